"""Time and peak memory of the `report` job on a run with many checkpoints, next to the memory its rule asks for.

Copies a finished run directory (`--run`, e.g. the demo's results; the model weights are not copied) and gives
each of its experiments `--checkpoints` checkpoints: every checkpoint's metrics.json is that of the experiment's
last one, the training log gets one logged row per step (a validation row per checkpoint), and the training
summary lists them all. Then runs `report.write_report` in its own process and prints its time, peak RSS and
`plasmidlm.resources.mem_mb("report", ...)`.

    PYTHONPATH=src:bench python bench/report_scale.py --run results/demo --checkpoints 2000 --workdir /tmp/report
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from model_scale import run_job
from plasmidlm import resources


def many_checkpoints(run: Path, experiment: str, n_checkpoints: int, save_steps: int) -> None:
    """Rewrite `experiment` of the copied `run` as if training had written `n_checkpoints` checkpoints."""
    model, evaluations = run / experiment / "model", run / experiment / "eval"
    summary = json.loads((model / "train_summary.json").read_text())
    last = evaluations / f"checkpoint-{summary['checkpoints'][-1]}" / "metrics.json"
    steps = [save_steps * (index + 1) for index in range(n_checkpoints)]
    metrics = last.read_text()
    for path in evaluations.iterdir():
        shutil.rmtree(path)
    for step in steps:
        (evaluations / f"checkpoint-{step}").mkdir()
        (evaluations / f"checkpoint-{step}" / "metrics.json").write_text(metrics)
    log = pd.read_csv(model / "training_log.tsv", sep="\t")
    template = log.dropna(subset=["eval_accuracy"]).iloc[-1]
    rows = pd.DataFrame([template] * steps[-1])
    rows["step"] = range(1, steps[-1] + 1)
    rows.loc[rows["step"] % save_steps != 0, ["eval_loss", "eval_accuracy"]] = None
    rows.to_csv(model / "training_log.tsv", sep="\t", index=False)
    summary |= {"checkpoints": steps, "total_steps": steps[-1]}
    (model / "train_summary.json").write_text(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run directory (results/<run>)")
    parser.add_argument("--checkpoints", type=int, default=2000, help="checkpoints per experiment")
    parser.add_argument("--save-steps", type=int, default=500, help="steps between checkpoints")
    parser.add_argument("--workdir", type=Path, default=Path("bench-report"))
    parser.add_argument("--library", type=Path, default=Path("src").resolve(), help="the src folder the job uses")
    arguments = parser.parse_args()
    run = arguments.workdir / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(arguments.run, run, ignore=shutil.ignore_patterns("checkpoint-*", "set_aside", "*.safetensors"))
    for eval_dir in arguments.run.glob("*/eval"):  # the evaluations of the checkpoints, without weights
        shutil.copytree(eval_dir, run / eval_dir.parent.name / "eval", dirs_exist_ok=True)
    experiments = [path.parent.parent.name for path in sorted(run.glob("*/model/train_summary.json"))]
    for experiment in experiments:
        many_checkpoints(run, experiment, arguments.checkpoints, arguments.save_steps)
    config = yaml.safe_load((run / "config.yaml").read_text())
    report = arguments.workdir / "report"
    report.mkdir(exist_ok=True)
    seconds, peak, output = run_job(
        f"from plasmidlm import report\nreport.write_report({str(run)!r}, config={config!r}, "
        f"out_comparison='{report}/comparison.tsv', out_html='{report}/report.html')", arguments.library)
    html_mb = (report / "report.html").stat().st_size / 1e6
    print(f"{len(experiments)} experiments x {arguments.checkpoints:,} checkpoints: report {seconds:.0f} s, "
          f"{peak:,.0f} MiB (mem_mb {resources.mem_mb('report', {})}); report.html {html_mb:.1f} MB")


if __name__ == "__main__":
    main()
