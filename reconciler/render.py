"""Plan → text (Terraform-like) and JSON, both from the same Plan object."""
from __future__ import annotations

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


def format_value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def attribute_line(attr: AttributeChange) -> str:
    before, after = attr.shown()
    if attr.before is None:
        return click.style("+ ", fg="green") + f"{attr.path}: {format_value(after)}"
    if attr.after is None:
        return click.style("- ", fg="red") + f"{attr.path}: {format_value(before)}"
    return click.style("~ ", fg="yellow") + f"{attr.path}: {format_value(before)} {ARROW} {format_value(after)}"


def resource_block(change: ResourceChange) -> list[str]:
    symbol = click.style(_SYMBOL[change.action], fg=_COLOUR[change.action], bold=True)
    lines = [f"  {symbol} {change.address} {_VERB[change.action]}"]
    lines += [f"      {attribute_line(attr)}" for attr in change.attributes]
    return lines


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. Live state matches canvas.yaml."
    s = plan.summary
    return (f"Plan: {s['create']} to create, {s['update']} to update, "
            f"{s['replace']} to replace, {s['delete']} to delete.")


def render_text(plan: Plan) -> str:
    lines = [f"Stack {plan.stack} in {plan.region}: canvas.yaml compared with live AWS.", ""]
    for change in plan.pending:
        lines += resource_block(change)
        lines.append("")
    unchanged = plan.summary[Action.NOOP.value]
    if plan.has_changes and unchanged:
        lines += [f"  {unchanged} resource(s) already match.", ""]
    lines.append(summary_line(plan))
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, sort_keys=False)
