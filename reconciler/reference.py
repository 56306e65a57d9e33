"""The canvas.yaml reference in README.md, generated from schemas/canvas.schema.json.

The schema is the single source of truth; `python -m reconciler.reference --write README.md`
rewrites the block between the markers, and a test fails when the two disagree.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from reconciler.spec import schema

START = "<!-- canvas-reference:start (generated from schemas/canvas.schema.json; do not edit) -->"
END = "<!-- canvas-reference:end -->"


def _resolve(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        target: dict = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type_of(node: dict) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(k for k in kinds if k)
    if "array" in kinds and isinstance(node.get("items"), dict):
        items = node["items"]
        text = f"list of {_type_of(items)}"
    if "object" in kinds and "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        text = f"map of {_type_of(node['additionalProperties'])}"
    bounds = [f"≥ {node['minimum']}" if "minimum" in node else "", f"≤ {node['maximum']}" if "maximum" in node else ""]
    bounds = [b for b in bounds if b]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def rows(schema: dict, node: dict | None = None, prefix: str = "") -> list[tuple[str, str, str, str]]:
    node = _resolve(node if node is not None else schema, schema)
    out = []
    required = set(node.get("required", ()))
    for key, child in node.get("properties", {}).items():
        child = _resolve(child, schema)
        path = f"{prefix}{key}"
        default = (f"`{json.dumps(child['default'])}`" if "default" in child
                   else "required" if key in required else "—")
        description = " ".join(child.get("description", "").split())
        out.append((path, _type_of(child), default, description.replace("|", "\\|")))
        if "properties" in child:
            out.extend(rows(schema, child, f"{path}."))
    return out


def render() -> str:
    lines = [START, "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{path}` | {kind} | {default} | {description} |"
              for path, kind, default, description in rows(schema())]
    lines += ["", END]
    return "\n".join(lines)


def splice(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return head + render() + tail


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(splice(path.read_text()))
        return 0
    print(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
