"""Plan → text (Terraform-like) and JSON, both from the same Plan object."""
from __future__ import annotations

import difflib
import json
from typing import Any

import click

from reconciler.plan import Action, AttributeChange, Plan, ResourceChange

_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-", Action.NOOP: " "}
_COLOUR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red"}
_VERB = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be deleted",
}
ARROW = "→"
BLOCK_WIDTH = 60
_SIGN_COLOUR = {"+": "green", "-": "red", "~": "yellow"}


def format_value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _is_block(value: Any) -> bool:
    return isinstance(value, (dict, list)) and len(format_value(value)) > BLOCK_WIDTH


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True).splitlines()


def attribute_lines(attr: AttributeChange) -> list[str]:
    """One line per attribute; a long document (a policy) as an indented block, and an
    updated one as a line diff, so the one changed statement stands out."""
    before, after = attr.shown()
    if attr.before is None:
        sign, value = "+", after
    elif attr.after is None:
        sign, value = "-", before
    else:
        sign, value = "~", None
    head = click.style(f"{sign} ", fg=_SIGN_COLOUR[sign]) + f"{attr.path}:"
    if sign != "~":
        if _is_block(value):
            return [head] + [f"    {line}" for line in _pretty(value)]
        return [f"{head} {format_value(value)}"]
    if _is_block(before) or _is_block(after):
        return [head] + [_diff_line(line) for line in difflib.ndiff(_pretty(before), _pretty(after))
                         if not line.startswith("? ")]
    return [f"{head} {format_value(before)} {ARROW} {format_value(after)}"]


def _diff_line(line: str) -> str:
    sign, text = line[0], line[2:]
    if sign == " ":
        return f"    {text}"
    return click.style(f"  {sign} ", fg=_SIGN_COLOUR["+" if sign == "+" else "-"]) + text


def resource_block(change: ResourceChange) -> list[str]:
    symbol = click.style(_SYMBOL[change.action], fg=_COLOUR[change.action], bold=True)
    lines = [f"  {symbol} {change.address} {_VERB[change.action]}"]
    if change.note:
        lines.append(f"      ({change.note})")
    lines += [f"      {line}" for attr in change.attributes for line in attribute_lines(attr)]
    return lines


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. Live state matches canvas.yaml."
    s = plan.summary
    return (f"Plan: {s['create']} to create, {s['update']} to update, "
            f"{s['replace']} to replace, {s['delete']} to delete.")


def render_text(plan: Plan) -> str:
    lines = [f"Stack {plan.stack} in {plan.region}: canvas.yaml compared with live AWS.", ""]
    for change in plan.steps():
        lines += resource_block(change)
        lines.append("")
    if plan.notes:
        lines += [f"  {note}" for note in plan.notes] + [""]
    unchanged = plan.summary[Action.NOOP.value]
    if plan.has_changes and unchanged:
        lines += [f"  {unchanged} resource(s) already match.", ""]
    lines.append(summary_line(plan))
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, sort_keys=False)
