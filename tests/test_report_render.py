"""The HTML report renders in a real headless browser (skipped where Chromium is not installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium(finished_run, tmp_path):
    report = finished_run.run / "report" / "report.html"
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000", f"--screenshot={screenshot}",
         report.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    with Image.open(screenshot) as image:
        assert image.size == (1200, 3000)
        colours = image.convert("L").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50  # text and plots, not a blank page
