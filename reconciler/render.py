"""Plan → text (Terraform-like), JSON and the drift report (text or markdown), all from the
same Plan object; and the history of applies as text."""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

import click

from reconciler.plan import Action, AttributeChange, Cause, Plan, ResourceChange

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
_CAUSE_MARK = {Cause.DRIFT: "(drift)", Cause.BOTH: "(drift; canvas.yaml changed too)"}
DRIFT_CHOICES = "apply to put it back as canvas.yaml says, or change canvas.yaml to accept it."
WHOLE_RESOURCE = "(the whole resource)"
MARKDOWN_CELL_WIDTH = 120


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
    mark = _cause_mark(attr)
    if sign != "~":
        if _is_block(value):
            return [head + mark] + [f"    {line}" for line in _pretty(value)]
        return [f"{head} {format_value(value)}{mark}"]
    if _is_block(before) or _is_block(after):
        return [head + mark] + [_diff_line(line) for line in difflib.ndiff(_pretty(before), _pretty(after))
                                if not line.startswith("? ")]
    return [f"{head} {format_value(before)} {ARROW} {format_value(after)}{mark}"]


def _cause_mark(attr: AttributeChange) -> str:
    mark = _CAUSE_MARK.get(attr.cause)
    return "  " + click.style(mark, fg="cyan", bold=True) if mark else ""


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
    if change.drifted:
        lines.append("      " + click.style("Drift:", fg="cyan", bold=True) + f" {DRIFT_CHOICES}")
    return lines


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. Live state matches canvas.yaml."
    s = plan.summary
    return (f"Plan: {s['create']} to create, {s['update']} to update, "
            f"{s['replace']} to replace, {s['delete']} to delete.")


def render_text(plan: Plan) -> str:
    lines = [f"Stack {plan.stack} in {plan.region}: canvas.yaml compared with live AWS."]
    lines += _baseline_lines(plan) + [""]
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


def _baseline_lines(plan: Plan) -> list[str]:
    baseline = plan.baseline
    if baseline is None:
        return []
    if baseline.problem:
        return [click.style("Warning: ", fg="yellow", bold=True) +
                f"the record of the last apply ({baseline.location}) could not be read: {baseline.problem}; "
                "every difference is shown as a change to canvas.yaml, none as drift."]
    if baseline.record is not None and plan.has_changes:
        return [f"Last apply: {_last_apply(baseline.record)}; (drift) marks what changed in AWS since then."]
    return []


def _last_apply(record: dict) -> str:
    return f"{record.get('applied_at')} by {record.get('caller_arn')}"


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, sort_keys=False)


# --- reconcile drift ------------------------------------------------------------------------

@dataclass(frozen=True)
class DriftRow:
    resource: str
    attribute: str
    last_applied: str
    live: str
    spec_changed_too: bool = False

    @property
    def note(self) -> str:
        return " (canvas.yaml changed too)" if self.spec_changed_too else ""


def drift_rows(plan: Plan) -> list[DriftRow]:
    """One row per drifted attribute; a resource deleted by hand, or made by hand where the
    last apply had removed it, is one row for the whole resource."""
    rows = []
    for change in plan.drifted:
        if change.action is Action.CREATE:
            rows.append(DriftRow(change.address, WHOLE_RESOURCE, "present", "deleted"))
        elif change.action is Action.DELETE and all(a.last_applied is None for a in change.drifted):
            rows.append(DriftRow(change.address, WHOLE_RESOURCE, "absent", "present"))
        else:
            rows += [DriftRow(change.address, attr.path, format_value(attr.shown_last_applied()),
                              format_value(attr.shown()[0]), attr.cause is Cause.BOTH) for attr in change.drifted]
    return rows


def _pending_line(plan: Plan) -> list[str]:
    # Counted in resources, as the plan's summary counts them (a create has many attributes).
    pending = sum(1 for c in plan.pending if any(a.cause is Cause.SPEC for a in c.attributes))
    if not pending:
        return []
    return [f"Not drift: {pending} resource(s) with changes from canvas.yaml not applied yet "
            f"(`reconcile plan` shows them)."]


def render_drift_text(plan: Plan) -> str:
    where = f"stack {plan.stack} in {plan.region}"
    record = plan.baseline.record if plan.baseline else None
    if record is None:
        location = plan.baseline.location if plan.baseline else "the stack's bucket"
        return "\n".join([f"No drift can be told for {where} yet: no apply is recorded at {location}; "
                          "`reconcile apply` records one."] + _pending_line(plan))
    if not plan.drifted:
        return "\n".join([f"No drift in {where}: live AWS matches the last apply ({_last_apply(record)})."]
                         + _pending_line(plan))
    lines = [f"Drift in {where}: changed in AWS since the last apply ({_last_apply(record)}).", ""]
    rows = drift_rows(plan)
    for change in plan.drifted:
        lines.append(click.style(f"  ~ {change.address}", fg="cyan", bold=True))
        lines += [f"      {row.attribute}{row.note}: last applied {row.last_applied}, live now {row.live}"
                  for row in rows if row.resource == change.address]
        lines += [f"      Drift: {DRIFT_CHOICES}", ""]
    lines.append(f"{len(rows)} drifted attribute(s) in {len(plan.drifted)} resource(s).")
    return "\n".join(lines + _pending_line(plan))


def render_drift_markdown(plan: Plan) -> str:
    where = f"`{plan.stack}` ({plan.region})"
    record = plan.baseline.record if plan.baseline else None
    if record is None:
        location = plan.baseline.location if plan.baseline else "the stack's bucket"
        lines = [f"### Drift check of {where}: no apply recorded yet", "",
                 f"No apply is recorded at `{location}`, so drift cannot be told apart from pending "
                 "changes yet; `reconcile apply` records one."]
    elif not plan.drifted:
        lines = [f"### No drift in {where}", "",
                 f"Live AWS matches the last apply ({_md_last_apply(record)})."]
    else:
        rows = drift_rows(plan)
        lines = [f"### Drift in {where}", "",
                 f"Changed in AWS outside canvas-reconcile since the last apply ({_md_last_apply(record)}):", "",
                 "| resource | attribute | last applied | live now |", "| --- | --- | --- | --- |"]
        lines += [f"| {_md_code(r.resource)} | {_md_code(r.attribute)}{r.note} | {_md_code(r.last_applied)} | "
                  f"{_md_code(r.live)} |" for r in rows]
        lines += ["", f"**{len(rows)} drifted attribute(s) in {len(plan.drifted)} resource(s).** "
                      f"For each: {DRIFT_CHOICES}"]
        if any(len(cell) > MARKDOWN_CELL_WIDTH for r in rows for cell in (r.last_applied, r.live)):
            lines.append("Long values are shortened here; `reconcile plan` shows them whole.")
    pending = _pending_line(plan)
    return "\n".join(lines + (["", f"_{pending[0]}_"] if pending else []))


def _md_last_apply(record: dict) -> str:
    return f"{_md_code(str(record.get('applied_at')))} by {_md_code(str(record.get('caller_arn')))}"


def _md_code(text: str) -> str:
    """A table cell as inline code: one line, pipes escaped, never wider than the table can bear."""
    text = " ".join(text.split())
    if len(text) > MARKDOWN_CELL_WIDTH:
        text = text[:MARKDOWN_CELL_WIDTH - 1] + "…"
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


# --- reconcile history ----------------------------------------------------------------------

def render_history(entries: list[dict], *, stack: str, location: str) -> str:
    if not entries:
        return "No applies recorded."
    lines = [f"Applies of stack {stack} recorded in {location}, newest first:", ""]
    for entry in entries:
        if entry.get("unreadable"):
            lines.append(f"{entry['version_id']}  (not a readable record)")
            continue
        spec_hash = (entry.get("spec_sha256") or "")[:12] or "?"
        lines.append(f"{entry.get('applied_at')}  {entry.get('caller_arn')}  spec {spec_hash}  "
                     f"tool {entry.get('tool_version')}")
        changes = entry.get("changes") or []
        lines += [f"    {c.get('action')} {c.get('address')}" for c in changes] or \
                 ["    (no changes: recorded a stack that already matched canvas.yaml)"]
    return "\n".join(lines)
