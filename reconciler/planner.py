"""Reads live state with read-only calls and turns desired vs live into a Plan.

Independent resources are read concurrently, and so is the record of the last apply, which
gives each differing attribute its cause (drift or spec; record.py). Every problem found (a
foreign stack's resource, a bucket in the wrong region, a denied read) is collected and
reported together.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.aws import describe_connection_error, error_code, error_message
from reconciler.diff import diff
from reconciler.errors import PlanError, ReconcileError
from reconciler.kinds import KINDS, Kind
from reconciler.plan import Action, AttributeChange, Plan, ResourceChange
from reconciler.record import read_baseline, with_causes
from reconciler.reserved import STACK_TAG
from reconciler.target import Target, discover
from reconciler.threads import read_pool

Wanted = list[tuple[Kind, dict]]


def read_live(clients, spec, target: Target, kinds: tuple[Kind, ...]) -> tuple[Wanted, dict, list[str]]:
    """(kind, desired document) for every resource of `kinds` canvas.yaml declares, in dependency
    order; {address: live document or None} for each read that worked; and the problems."""
    with clients.shared_reads(), read_pool(len(kinds)) as pool:
        jobs = _start_reads(pool, clients, spec, target, kinds)
    return _gathered(kinds, jobs)


def build_plan(spec, clients, *, region: str, kinds=KINDS, max_workers: int | None = None,
               target: Target | None = None) -> Plan:
    """One wave of reads: STS (the account), the record and every kind at once. A kind works out
    what it wants in its own thread, so only what builds an ARN or URI from the account waits
    for STS; reads by name go out at once (issue 12: a no-op plan in about two round trips)."""
    with clients.shared_reads(), read_pool(max_workers or len(kinds) + 2) as pool:
        account = None
        if target is None:  # submitted first: with one worker it runs before anything that waits on it
            account = pool.submit(lambda: discover(clients, region).account)
            target = Target(region=region, account=account)
        record = pool.submit(read_baseline, clients, bucket=spec.bucket["name"], stack=spec.stack)
        jobs = _start_reads(pool, clients, spec, target, kinds)
    failed = account.exception() if account is not None else None
    if failed is not None:
        _account_error(failed)  # one message, not the same failure per resource
    wants, lives, problems = _gathered(kinds, jobs)
    baseline = record.result()
    changes, desired_state = [], {}
    for kind, want in wants:
        address = f"{kind.TYPE}.{want['name']}"
        if address not in lives:
            continue  # its read failed; the problem is listed
        have = lives[address]
        foreign = _foreign_owner(have, spec.stack)
        if foreign:
            problems.append(
                f"{address} belongs to stack {foreign!r} (tag {STACK_TAG}), not to {spec.stack!r}; "
                "it was left untouched — use another name in canvas.yaml, or retag it if it really is this stack's")
            continue
        want = kind.resolve(want, lives)
        desired_state[address] = want
        change = resource_change(kind, want, have)
        if change is not None:
            changes.append(with_causes(kind, change, baseline))
    if problems:
        raise PlanError(problems)
    return Plan(stack=spec.stack, region=region, changes=tuple(changes), warnings=tuple(spec.warnings),
                baseline=baseline, desired_state=desired_state, account=target.account)


def resource_change(kind, want: dict, have: dict | None) -> ResourceChange | None:
    """The change that brings `have` to `want`; None when neither wants nor has it."""
    note = kind.note(want, have)
    if want.get("absent"):
        if have is None:
            return None
        removed = tuple(AttributeChange(a.path, a.after, None, a.sensitive, field_path=a.field_path, key=a.key)
                        for a in diff(kind.FIELDS, have, None))
        return ResourceChange(type=kind.TYPE, name=want["name"], action=Action.DELETE,
                              attributes=removed, desired=want, live=have)
    attributes = tuple(diff(kind.FIELDS, want, have))
    if have is None:
        action = Action.CREATE
    elif not attributes:
        action = Action.NOOP
    elif kind.CREATE_ON_CHANGE:
        action = Action.CREATE
    else:
        action = Action.REPLACE if kind.REPLACE_ON_CHANGE else Action.UPDATE
    return ResourceChange(type=kind.TYPE, name=want["name"], action=action, attributes=attributes,
                          desired=want, live=have, note=note)


def _start_reads(pool: ThreadPoolExecutor, clients, spec, target: Target, kinds: tuple[Kind, ...]) -> list[Future]:
    return [pool.submit(_desired_and_read, kind, spec, target, clients) for kind in kinds]


def _desired_and_read(kind: Kind, spec, target: Target, clients) -> list[tuple[dict, dict | None, Exception | None]]:
    """(want, live, read error) for each resource of `kind` that canvas.yaml declares."""
    wanted = kind.desired(spec, target)
    out: list[tuple[dict, dict | None, Exception | None]] = []
    for want in wanted if isinstance(wanted, list) else [wanted] if wanted is not None else []:
        try:
            out.append((want, kind.read(clients, want), None))
        except Exception as exc:  # noqa: BLE001 - sorted into a problem or a bug by _read_problem
            out.append((want, None, exc))
    return out


def _gathered(kinds: tuple[Kind, ...], jobs: list[Future]) -> tuple[Wanted, dict, list[str]]:
    wants: Wanted = []
    lives: dict[str, dict | None] = {}
    problems: list[str] = []
    for kind, job in zip(kinds, jobs, strict=True):
        for want, have, error in job.result():
            address = f"{kind.TYPE}.{want['name']}"
            wants.append((kind, want))
            if error is not None:
                problems.append(_read_problem(address, error))
            else:
                lives[address] = have
    return wants, lives, problems


def discover_target(clients, region: str) -> Target:
    try:
        return discover(clients, region)
    except (ClientError, BotoCoreError) as exc:
        _account_error(exc)


def _account_error(exc: BaseException) -> NoReturn:
    if not isinstance(exc, (ClientError, BotoCoreError)):
        raise exc
    raise ReconcileError(describe_connection_error(exc) or
                         f"cannot tell which account this is (sts:GetCallerIdentity): "
                         f"{error_code(exc)}: {error_message(exc)}") from exc


def _foreign_owner(have: dict | None, stack: str) -> str | None:
    owner = (have or {}).get("tags", {}).get(STACK_TAG)
    return owner if owner and owner != stack else None


def _read_problem(address: str, exc: Exception) -> str:
    connection = describe_connection_error(exc)
    if connection:
        # The same cause would repeat for every resource; one line says it.
        raise ReconcileError(connection) from exc
    if isinstance(exc, ReconcileError):
        return f"{address}: {exc}"
    if not isinstance(exc, (ClientError, BotoCoreError)):
        raise exc  # a bug, not an AWS answer: let it show as one
    code = error_code(exc)
    hint = " — the plan needs read access to it (see README: permissions)" if "AccessDenied" in code else ""
    return f"reading {address} failed: {code}: {error_message(exc)}{hint}"
