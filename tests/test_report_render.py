"""The HTML report escapes what it quotes, and renders in a real headless browser (skipped where Chromium is not
installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from PIL import Image

from plasmidlm.report import write_report

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


def test_report_escapes_text_but_not_its_tables_and_figures(finished_run, tmp_path):
    config = yaml.safe_load((finished_run.run / "config.yaml").read_text()) | {"run_name": "<b>e2e</b> & 'co'"}
    write_report(finished_run.run, config=config, out_comparison=tmp_path / "comparison.tsv",
                 out_html=tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "<title>plasmidlm report: &lt;b&gt;e2e&lt;/b&gt; &amp; &#39;co&#39;</title>" in page
    assert "<b>" not in page
    assert '<table class="dataframe data">' in page and '<img alt="training curves" src="data:image/png' in page
