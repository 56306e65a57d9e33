"""Carries out a Plan's pending changes in dependency order, one step at a time.

Each step prints `[i/n] <action> <address> … SUCCESS (0.4s)` or `FAIL: <code>: <message>`.
The first failure stops the run; what was done and what remains is listed, and running
apply again continues from live state (there is no state file to get out of step). Only a
run in which every step succeeded is recorded (record.py), and only by apply_recorded.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.aws import error_code, error_message
from reconciler.errors import ReconcileError
from reconciler.kinds import BY_TYPE, Kind
from reconciler.plan import Action, Plan, ResourceChange
from reconciler.record import record_apply
from reconciler.recreate import create_or_adopt

# Known failures become a FAIL line; anything else is a bug and keeps its traceback.
STEP_ERRORS = (ClientError, BotoCoreError, ReconcileError)


@dataclass
class ApplyResult:
    done: list[ResourceChange] = field(default_factory=list)
    failed: ResourceChange | None = None
    remaining: list[ResourceChange] = field(default_factory=list)
    recorded: str | None = None  # where the record of this apply was written

    @property
    def ok(self) -> bool:
        return self.failed is None


def apply_plan(plan: Plan, clients, *, echo: Callable[..., None], clock: Callable[[], float] = time.monotonic,
               kinds=BY_TYPE, done_before: tuple[ResourceChange, ...] = (), total: int | None = None) -> ApplyResult:
    """done_before: steps of this run already carried out (the bucket, made before the lock);
    they count in the step numbers and in the result. total: the run's step count, when this
    call carries out only its first steps."""
    steps = plan.steps()
    result = ApplyResult(done=list(done_before))
    total = total or len(done_before) + len(steps)
    for index, change in enumerate(steps, len(done_before) + 1):
        echo(f"[{index}/{total}] {change.action.value} {change.address} … ", nl=False)
        started, step = clock(), _StepOutput(echo)
        try:
            run_step(kinds[change.type], change, clients.noting_to(step.note), stack=plan.stack)
        except STEP_ERRORS as exc:
            step.finish(f"FAIL: {describe_failure(exc)}")
            result.failed, result.remaining = change, steps[index - len(done_before):]
            return result
        step.finish(f"SUCCESS ({clock() - started:.1f}s)")
        result.done.append(change)
    return result


def apply_recorded(plan: Plan, clients, *, spec, echo: Callable[..., None],
                   clock: Callable[[], float] = time.monotonic,
                   done_before: tuple[ResourceChange, ...] = ()) -> ApplyResult:
    """apply_plan, then the record of what was applied — only when every step succeeded, so a
    failed run leaves the last record exactly as it was (the next plan still compares with it)."""
    result = apply_plan(plan, clients, echo=echo, clock=clock, done_before=done_before)
    if result.ok:
        result.recorded = record_apply(plan, clients, spec=spec, done=result.done, force=bool(done_before))
    return result


class _StepOutput:
    """A step's status stays on its own line unless the step has something to say while it
    works (a retry, a wait); then the notes go indented under it and the status follows."""

    def __init__(self, echo: Callable[..., None]):
        self.echo, self.noted = echo, False

    def note(self, message: str) -> None:
        if not self.noted:
            self.echo("")
            self.noted = True
        self.echo(f"      {message}")

    def finish(self, status: str) -> None:
        # A failure may quote several lines (docker's last output): keep them under the step.
        status = status.replace("\n", "\n        ")
        self.echo(f"      {status}" if self.noted else status)


def run_step(kind: Kind, change: ResourceChange, clients, *, stack: str) -> None:
    # A create refused as "already exists" is re-read and adopted when it is this stack's
    # (a lost response, or a concurrent apply): recreate.py.
    want, have = change.desired or {}, change.live or {}  # the planner sets what each action needs
    if change.action is Action.CREATE:
        create_or_adopt(kind, want, clients, stack=stack)
    elif change.action is Action.UPDATE and kind.update is not None:
        kind.update(clients, want, have, change.changed_paths)
    elif change.action is Action.REPLACE and kind.delete is not None:
        kind.delete(clients, have)
        create_or_adopt(kind, want, clients, stack=stack)
    elif change.action is Action.DELETE and kind.delete is not None:
        kind.delete(clients, have)
    else:
        raise ReconcileError(f"{change.action.value} is not supported for {change.type}")


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, ReconcileError):
        return str(exc)
    return f"{error_code(exc)}: {error_message(exc)}"


def failure_report(result: ApplyResult) -> list[str]:
    if result.failed is None:
        return []
    total = len(result.done) + 1 + len(result.remaining)
    lines = [f"Apply stopped at a failure: {len(result.done)} of {total} change(s) done."]
    lines += [f"  done:     {c.action.value} {c.address}" for c in result.done]
    lines.append(f"  failed:   {result.failed.action.value} {result.failed.address}")
    lines += [f"  not run:  {c.action.value} {c.address}" for c in result.remaining]
    lines.append("Fix the cause and run `reconcile apply` again: it plans afresh from live state "
                 "and continues where this run stopped.")
    return lines
