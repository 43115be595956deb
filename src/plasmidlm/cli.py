"""The `plasmidlm` command: use trained models and results without Snakemake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from plasmidlm import PlasmidlmError, __version__


def _predict(args) -> None:
    from plasmidlm.predict import predict_fasta

    summary = predict_fasta(args.model, args.fasta, args.out, stride=args.stride, batch_size=args.batch_size,
                            both_strands=args.both_strands, log=lambda message: print(message, file=sys.stderr))
    print(f"{summary['sequences']} sequence(s), {summary['windows']} window(s) in {summary['seconds']:.1f} s; "
          f"wrote {args.out}.sequences.tsv and {args.out}.windows.tsv.gz")


def _report(args) -> None:
    from plasmidlm.report import write_report

    run_dir = Path(args.run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise PlasmidlmError(f"{config_path}: not found; is {run_dir} a finished plasmidlm run folder?")
    write_report(run_dir, yaml.safe_load(config_path.read_text()), run_dir / "report" / "comparison.tsv",
                 run_dir / "report" / "report.html")
    print(f"wrote {run_dir / 'report' / 'report.html'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plasmidlm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"plasmidlm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify the sequences of a FASTA with a trained model")
    predict.add_argument("--model", required=True, help="trained model directory (e.g. a checkpoint-<step>)")
    predict.add_argument("--fasta", required=True, help="FASTA file (plain or gzip)")
    predict.add_argument("--out", required=True, help="output prefix: PREFIX.sequences.tsv, PREFIX.windows.tsv.gz")
    predict.add_argument("--stride", type=int, help="step between windows in nt (default: the window length)")
    predict.add_argument("--batch-size", type=int, default=256, help="windows per inference batch")
    predict.add_argument("--both-strands", action="store_true", help="average predictions over both strands")
    predict.set_defaults(run=_predict)

    report = commands.add_parser("report", help="(re)write the report of a finished run folder")
    report.add_argument("run_dir", help="results/<run> folder")
    report.set_defaults(run=_report)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except PlasmidlmError as error:
        print(f"plasmidlm: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
