"""An apply under the stack's lock: plan, confirm, take the lock, plan again, apply, record.

The plan a person approves is made without the lock (nobody holds a lock while a person
reads). Under the lock the stack is planned again: if another apply changed what this one
would do, an approved plan is stale and nothing is written; with --auto-approve the plan
made under the lock is shown and applied. The record is written before the lock is
released, so it always agrees with what this apply made.

The stack from nothing: the lock lives in the stack's bucket, so a first apply creates the
bucket before taking the lock. That create is idempotent (recreate.py): of two first applies
racing, the loser's create is refused with BucketAlreadyOwnedByYou and adopts the bucket,
then waits for, or is refused, the lock like any second apply.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Callable

from botocore.exceptions import ClientError

from reconciler import lock
from reconciler.apply import ApplyResult, apply_plan, apply_recorded
from reconciler.errors import ReconcileError
from reconciler.kinds import s3_bucket
from reconciler.plan import Action, Plan, ResourceChange
from reconciler.record import needs_writing
from reconciler.recreate import already_exists


class StalePlan(ReconcileError):
    """What the plan was made against has changed; nothing was applied."""


def change_fingerprint(change: ResourceChange) -> list:
    """What the change would do and the live values it was planned against."""
    return [change.address, change.action.value,
            [[a.path, a.before, a.after] for a in change.attributes]]


def fingerprints(plan: Plan, *, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """{address: hash of its pending change} for every pending change not in skip."""
    return {c.address: _sha256(change_fingerprint(c)) for c in plan.pending if c.address not in skip}


def plan_sha256(plan: Plan) -> str:
    return _sha256(sorted(fingerprints(plan).items()))


def _sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def differences(approved: dict[str, str], now: dict[str, str]) -> list[str]:
    """Addresses whose pending change is not what it was, each with how."""
    out = []
    for address in sorted(set(approved) | set(now)):
        if address not in now:
            out.append(f"{address}: no longer needs changing")
        elif address not in approved:
            out.append(f"{address}: now needs a change the plan did not have")
        elif approved[address] != now[address]:
            out.append(f"{address}: its live values or planned change differ")
    return out


def bucket_first(plan: Plan, clients, *,
                 echo: Callable[..., None]) -> tuple[tuple[ResourceChange, ...], frozenset[str]]:
    """Create the bucket ahead of the rest when the plan creates it (the lock lives in it),
    numbered as the plan's first step; the changes made, and the addresses handled. When a
    racing apply made it first, it is left as it is: its settings are planned again under
    the lock, where no other apply can be writing them."""
    creates = tuple(c for c in plan.pending if c.type == "s3_bucket" and c.action is Action.CREATE)
    if not creates:
        return (), frozenset()
    handled = frozenset(c.address for c in creates)
    try:
        s3_bucket.create(clients, creates[0].desired or {})
    except ClientError as exc:
        if not already_exists(exc):
            result = apply_plan(dataclasses.replace(plan, changes=creates), clients, echo=echo,
                                total=len(plan.steps()))  # prints the step's FAIL line as any step would
            if not result.ok:
                raise ReconcileError("the bucket could not be created, so the stack could not be locked; nothing "
                                     "else was changed — fix the cause and run apply again") from exc
            return tuple(result.done), handled
        echo(f"{creates[0].address} already exists (made by another apply meanwhile): "
             "its settings are planned again under the lock")
        return (), handled
    echo(f"[1/{len(plan.steps())}] create {creates[0].address} … SUCCESS (made first: the stack's lock is kept in it)")
    return creates, handled


def locked_apply(approved: Plan, clients, *, spec, replan: Callable[[], Plan], echo: Callable[..., None],
                 render: Callable[[Plan], str], auto_approved: bool,
                 lock_timeout: float = 0.0) -> tuple[Plan, ApplyResult]:
    """Apply `approved` under the lock, or the plan made under it when auto-approved; the plan applied
    and the result. StalePlan when a person approved something the stack no longer matches."""
    if not approved.has_changes and not needs_writing(approved):
        return approved, apply_plan(approved, clients, echo=echo)  # nothing to write: no lock to take
    made, skip = bucket_first(approved, clients, echo=echo)
    with lock.held(clients, bucket=spec.bucket["name"], stack=spec.stack, operation="apply",
                   plan_sha256=plan_sha256(approved), timeout=lock_timeout, notify=echo):
        current = replan()
        changed = differences(fingerprints(approved, skip=skip), fingerprints(current, skip=skip))
        if changed and not auto_approved:
            raise StalePlan("stale plan: the stack changed after the plan you approved (another apply, or a change "
                            "in AWS); nothing was applied:\n  " + "\n  ".join(changed) +
                            "\nRun apply again to see and approve the plan as it is now.")
        if changed:
            echo("The stack changed since the plan above (" + "; ".join(changed) + "); applying the plan "
                 "made under the lock:\n" + render(current))
        return current, apply_recorded(current, clients, spec=spec, echo=echo, done_before=made)


def locked_destroy(plan: Plan, clients, *, spec, echo: Callable[..., None],
                   lock_timeout: float = 0.0) -> tuple[ApplyResult, str | None]:
    """Destroy under the stack's lock, when there is a bucket to keep it in (a stack whose bucket
    is gone has nowhere to lock); the result and where the record was written."""
    from reconciler.destroy import DESTROY_KINDS
    from reconciler.record import record_destroy

    def run() -> tuple[ApplyResult, str | None]:
        outcome = apply_plan(plan, clients, echo=echo, kinds=DESTROY_KINDS)
        return outcome, record_destroy(plan, clients, spec=spec, done=outcome.done) if outcome.ok else None

    if not _bucket_exists(clients, spec.bucket["name"]):
        return run()
    with lock.held(clients, bucket=spec.bucket["name"], stack=spec.stack, operation="destroy",
                   plan_sha256=plan_sha256(plan), timeout=lock_timeout, notify=echo):
        return run()


def _bucket_exists(clients, bucket: str) -> bool:
    from reconciler.aws import absent_on

    return absent_on(("NoSuchBucket", "404", "NotFound"), lambda: clients.s3.head_bucket(Bucket=bucket)) is not None
