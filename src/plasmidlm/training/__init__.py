"""Training: fine-tuning a classifier and masked-LM pretraining with the Hugging Face Trainer.

Where each part lives (importing this package imports none of them):
- `data`: the datasets of tokenized windows (`WindowDataset`; fresh windows every epoch: `EpochTable`,
  `EpochWindows`), the seeded per-epoch sampler and class balance weights, the batch collator (`PadToLongest`);
- `runs`: what a run is (`run_record`, window digests), its `schedule` and `epochs_to_draw`, and the best
  checkpoint on validation (`best_checkpoint`); without torch, for the data and report steps;
- `checkpointing`: the checkpoints in an output directory: completeness, setting aside, and which one a re-run
  resumes from (`prepare_output_dir`); without torch;
- `checkpoint_writes`: `CheckpointTrainer`, the Trainer whose checkpoints are complete only once every file is
  written, in the background on a GPU;
- `trainer`: `WindowTrainer` (class balance, LoRA checkpoints), the callbacks (`ProgressLog`, `StopOnSigterm`),
  `run_until_done_or_sigterm` and `log_history_table`;
- `arguments`: the Trainer's settings (`training_arguments`, `device_settings`);
- `fine_tune` and `pretrain`: the entry points, `fine_tune.fine_tune` and `pretrain.pretrain_mlm`.
"""
