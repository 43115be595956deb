"""Rewrite the demo's figures in docs/demo.md (the block between its demo-figures markers) from a finished run:

    PYTHONPATH=src python scripts/demo_figures.py results/demo
    PYTHONPATH=src python scripts/demo_figures.py results/demo --compare /elsewhere/results/demo

With --compare, the block also holds the differences between the two runs (best step, test window accuracy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from plasmidlm.report.demo_figures import figures_block, with_figures

DEMO_PAGE = Path(__file__).resolve().parents[1] / "docs" / "demo.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a finished run's folder, results/<run>")
    parser.add_argument("--compare", metavar="OTHER_RUN_DIR", help="a second finished run of the same config")
    parser.add_argument("--page", type=Path, default=DEMO_PAGE, help="the page to rewrite (default: docs/demo.md)")
    args = parser.parse_args()
    args.page.write_text(with_figures(args.page.read_text(), figures_block(args.run_dir, args.compare)))
    print(f"{args.page}: figures of {args.run_dir}" + (f" against {args.compare}" if args.compare else ""))


if __name__ == "__main__":
    main()
