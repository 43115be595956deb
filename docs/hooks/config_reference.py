"""MkDocs hook: the configuration reference is generated from src/plasmidlm/config.schema.yaml at build time,
so that the schema stays its only copy.

In a page, `<!-- config-reference -->` becomes one table per top-level section of the schema (every key, nested
ones flattened to dotted names, `$ref`s resolved: name, type, default, description), and
`<!-- reserved-experiment-names -->` the names that plasmidlm.config refuses as experiment names.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "src"))  # this checkout's schema, not that of a plasmidlm installed elsewhere

from plasmidlm.config import RESERVED_EXPERIMENT_NAMES, load_schema  # noqa: E402

REFERENCE_MARKER = "<!-- config-reference -->"
RESERVED_MARKER = "<!-- reserved-experiment-names -->"
BOUNDS = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))


def resolve(node: dict, schema: dict) -> dict:
    """`node` with its local `$ref` ("#/$defs/name") replaced by the definition; the node's own keys win."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**resolve(target, schema), **{key: value for key, value in node.items() if key != "$ref"}}


def flatten(schema: dict) -> list[dict]:
    """Every key of the schema in document order: {name, node}; `<name>` stands for a key the user chooses."""
    keys = []

    def walk(node: dict, name: str) -> None:
        node = resolve(node, schema)
        if name:
            keys.append({"name": name, "node": node})
        for key, child in node.get("properties", {}).items():
            walk(child, f"{name}.{key}" if name else key)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{name}.<name>")

    walk(schema, "")
    return keys


def type_text(node: dict, schema: dict) -> str:
    node = resolve(node, schema)
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "array" in types and "items" in node:
        types[types.index("array")] = f"list of {type_text(node['items'], schema)}"
    text = " or ".join(types)
    if "enum" in node:
        text = "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    bounds = [f"{sign} {node[key]}" for key, sign in BOUNDS if key in node]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def default_text(node: dict) -> str:
    if "default" not in node or node.get("type") == "object":
        return ""
    default = node["default"]
    return f"`{default}`" if isinstance(default, str) and default else f"`{json.dumps(default)}`"


def markdown_text(text: str) -> str:
    """One table cell: whitespace collapsed, `|` escaped, and `<`, `>`, `&` escaped outside code spans (the
    schema's `results/<run>/` would otherwise be read as an HTML tag)."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(part if inside_code else html.escape(part, quote=False)
                    for inside_code, part in zip([False, True] * len(parts), parts))


def section_tables(schema: dict) -> str:
    """A table of the top-level scalar keys, then a heading, a description and a table per top-level object."""
    sections: dict[str, list[dict]] = {}
    for key in flatten(schema):
        top = key["name"].split(".")[0]
        is_section = resolve(schema["properties"][top], schema).get("type") == "object"
        sections.setdefault(top if is_section else "", []).append(key)
    header = "| key | type | default | description |\n|---|---|---|---|\n"
    blocks = []
    for section, keys in sections.items():
        rows = [key for key in keys if key["name"] != section]
        lines = [f"### `{section}`\n" if section else "### Top level\n"]
        if section:
            lines.append(markdown_text(resolve(schema["properties"][section], schema).get("description", "")) + "\n")
        lines.append(header + "".join(
            f"| `{key['name']}` | {markdown_text(type_text(key['node'], schema))} | {default_text(key['node'])} "
            f"| {markdown_text(key['node'].get('description', ''))} |\n" for key in rows))
        blocks.append("\n".join(lines))
    return markdown_text(schema.get("description", "")) + "\n\n" + "\n".join(blocks)


def on_page_markdown(markdown: str, **_) -> str:
    if REFERENCE_MARKER in markdown:
        markdown = markdown.replace(REFERENCE_MARKER, section_tables(load_schema()))
    if RESERVED_MARKER in markdown:
        markdown = markdown.replace(RESERVED_MARKER, ", ".join(f"`{name}`" for name in RESERVED_EXPERIMENT_NAMES))
    return markdown
