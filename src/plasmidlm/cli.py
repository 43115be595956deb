"""The `plasmidlm` command: use trained models and results without Snakemake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from plasmidlm import PlasmidlmError, __version__
from plasmidlm.jobs import logging_to


def _predict(args) -> None:
    from plasmidlm.layout import prediction_paths
    from plasmidlm.predict import predict_fasta

    out_windows, out_sequences = prediction_paths(args.out)
    summary = predict_fasta(args.model, args.fasta, out_windows=out_windows, out_sequences=out_sequences,
                            stride=args.stride, batch_size=args.batch_size, both_strands=args.both_strands,
                            window_length=args.window_length, trust_remote_code=args.trust_remote_code,
                            temperature=args.temperature, min_confidence=args.min_confidence,
                            precision=args.precision)
    print(f"{summary['sequences']} sequence(s) classified from {summary['windows']} window(s); "
          f"wrote {out_sequences} and {out_windows}")


def _embed(args) -> None:
    from plasmidlm.predict import embed_fasta

    summary = embed_fasta(args.model, args.fasta, out_prefix=args.out, stride=args.stride, batch_size=args.batch_size,
                          window_length=args.window_length, trust_remote_code=args.trust_remote_code)
    print(f"{summary['windows']} window and {summary['sequences']} sequence embedding(s) of dimension "
          f"{summary['dimensions']}; wrote {args.out}.windows.npy/.tsv and {args.out}.sequences.npy/.tsv")


def _report(args) -> None:
    from plasmidlm import layout
    from plasmidlm.report import write_report

    run_dir = Path(args.run_dir)
    config_path = Path(layout.run_config(run_dir))
    if not config_path.is_file():
        raise PlasmidlmError(f"{config_path}: not found; is {run_dir} a finished plasmidlm run folder?")
    write_report(run_dir, config=yaml.safe_load(config_path.read_text()), out_comparison=layout.comparison(run_dir),
                 out_html=layout.report_html(run_dir))
    print(f"wrote {layout.report_html(run_dir)}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _add_model_arguments(parser, outputs: str) -> None:
    from plasmidlm.config import CPU_BATCH_SIZE, GPU_BATCH_SIZE

    parser.add_argument("--model", required=True, help="trained model directory (e.g. a checkpoint-<step>)")
    parser.add_argument("--fasta", required=True, help="FASTA file (plain or gzip)")
    parser.add_argument("--out", required=True, help=f"output prefix: writes {outputs}")
    parser.add_argument("--stride", type=_positive_int, help="step between windows in nt (default: the window length)")
    parser.add_argument("--batch-size", type=_positive_int,
                        help=f"windows per inference batch (default: {GPU_BATCH_SIZE} on a GPU, {CPU_BATCH_SIZE} "
                             f"on a CPU)")
    parser.add_argument("--window-length", type=_positive_int,
                        help="window length in nt, for models not trained by plasmidlm (default: from the model)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run the code that a model ships in its directory (e.g. DNABERT-2); only for models "
                             "you trust")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from plasmidlm.config import INFERENCE_PRECISIONS

    parser = argparse.ArgumentParser(prog="plasmidlm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"plasmidlm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify the sequences of a FASTA with a trained model")
    _add_model_arguments(predict, "PREFIX.sequences.tsv and PREFIX.windows.tsv.gz")
    predict.add_argument("--both-strands", action="store_true", help="average predictions over both strands")
    predict.add_argument("--temperature", type=_positive_float, default=1.0, metavar="T",
                         help="calibrate window probabilities as softmax(logits / T); the pipeline fits T on "
                              "validation windows (results/<run>/<experiment>/evidence/metrics.json, "
                              "calibration.temperature)")
    predict.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                         help="floating-point precision of inference; auto (default): bf16 on GPUs of compute "
                              "capability 8.0 and later and on CPUs with AMX, fp16 on 7.x GPUs, fp32 elsewhere")
    predict.add_argument("--min-confidence", type=_probability, metavar="P",
                         help="label a sequence 'uncertain' when its highest probability is below P")
    predict.set_defaults(run=_predict)

    embed = commands.add_parser("embed", help="mean-pooled embeddings of the windows and sequences of a FASTA")
    _add_model_arguments(embed, "PREFIX.windows.npy/.tsv and PREFIX.sequences.npy/.tsv")
    embed.set_defaults(run=_embed)

    report = commands.add_parser("report", help="(re)write the report of a finished run folder")
    report.add_argument("run_dir", help="results/<run> folder")
    report.set_defaults(run=_report)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with logging_to(sys.stderr):  # the library's progress, one line each
            args.run(args)
    except PlasmidlmError as error:
        print(f"plasmidlm: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
