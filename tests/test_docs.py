"""The documentation: the MkDocs site builds in strict mode (a broken link or anchor, or a page missing from the
nav, fails), its configuration reference lists every key of the schema, and the README's first screen stays
short, links to pages that exist and shows a my.yaml that the workflow accepts."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO_ROOT
from plasmidlm.config import (RESERVED_EXPERIMENT_NAMES, SCHEMA_PATH, check_config_given, check_references,
                              load_schema)

README = REPO_ROOT / "README.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


def schema_keys(node: dict, schema: dict, prefix: str = ""):
    """Every dotted key below `node`, `<name>` standing for a key the user chooses (experiments.<name>)."""
    if "$ref" in node:
        target = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **node}
    for name, child in node.get("properties", {}).items():
        yield prefix + name
        yield from schema_keys(child, schema, f"{prefix}{name}.")
    if isinstance(node.get("additionalProperties"), dict):
        yield f"{prefix}<name>"
        yield from schema_keys(node["additionalProperties"], schema, f"{prefix}<name>.")


def test_the_configuration_reference_lists_every_schema_key(site):
    page = (site / "configuration" / "index.html").read_text()
    schema = load_schema()
    keys = list(schema_keys(schema, schema))
    assert {"run_name", "split.near_duplicates.threshold", "model.lora.target_modules", "experiments.<name>.train",
            "predict.fasta.<name>"} <= set(keys)
    missing = [key for key in keys if f"<code>{html.escape(key)}</code>" not in page]
    assert not missing, f"not in the generated configuration reference: {missing}"


def test_the_reserved_experiment_names_come_from_the_library(site):
    page = (site / "configuration" / "index.html").read_text()
    listed = ", ".join(f"<code>{name}</code>" for name in RESERVED_EXPERIMENT_NAMES)
    assert listed in page


def test_the_demo_page_has_the_markers_that_scripts_demo_figures_rewrites():
    text = (REPO_ROOT / "docs" / "demo.md").read_text()
    assert text.count("<!-- demo-figures:begin -->") == 1 and text.count("<!-- demo-figures:end -->") == 1


def test_the_readme_first_screen_is_short():
    assert len(README.read_text().splitlines()) <= 150


def test_the_readme_links_to_every_page_of_the_site():
    nav = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())["nav"]
    pages = {page for entry in nav for page in entry.values()} - {"index.md"}
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)(?:#[\w-]+)?\)", README.read_text()))
    assert pages <= linked, f"pages the README does not link: {pages - linked}"
    assert all((REPO_ROOT / "docs" / page).is_file() for page in linked)


def test_the_readmes_my_yaml_is_a_configuration_the_workflow_accepts():
    """The Snakefile's checks, in its order (snakemake's validate fills in the schema's defaults)."""
    from snakemake.utils import validate

    [block] = re.findall(r"```yaml\n(# my\.yaml\n.*?)```", README.read_text(), flags=re.DOTALL)
    config = yaml.safe_load(block)
    check_config_given(config)
    validate(config, str(SCHEMA_PATH))
    check_references(config)
    assert "--configfile my.yaml" in README.read_text()
