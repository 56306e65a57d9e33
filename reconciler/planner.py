"""Reads live state with read-only calls and turns desired vs live into a Plan.

Independent resources are read concurrently; every problem found (a foreign stack's
resource, a bucket in the wrong region, a denied read) is collected and reported together.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.aws import describe_connection_error, error_code, error_message
from reconciler.diff import diff
from reconciler.errors import PlanError, ReconcileError
from reconciler.kinds import KINDS
from reconciler.normalize import STACK_TAG
from reconciler.plan import Action, Plan, ResourceChange


def build_plan(spec, clients, *, region: str, kinds=KINDS, max_workers: int | None = None) -> Plan:
    wants = [(kind, kind.desired(spec, region)) for kind in kinds]
    clients.warm({kind.SERVICE for kind in kinds})
    with ThreadPoolExecutor(max_workers=max_workers or len(wants)) as pool:
        futures = [pool.submit(kind.read, clients, want) for kind, want in wants]
    changes, problems = [], []
    for (kind, want), future in zip(wants, futures):
        address = f"{kind.TYPE}.{want['name']}"
        try:
            have = future.result()
        except Exception as exc:
            problems.append(_read_problem(address, exc))
            continue
        foreign = _foreign_owner(have, spec.stack)
        if foreign:
            problems.append(
                f"{address} belongs to stack {foreign!r} (tag {STACK_TAG}), not to {spec.stack!r}; "
                "it was left untouched — use another name in canvas.yaml, or retag it if it really is this stack's")
            continue
        changes.append(resource_change(kind, want, have))
    if problems:
        raise PlanError(problems)
    return Plan(stack=spec.stack, region=region, changes=tuple(changes), warnings=tuple(spec.warnings))


def resource_change(kind, want: dict, have: dict | None) -> ResourceChange:
    attributes = tuple(diff(kind.FIELDS, want, have))
    if have is None:
        action = Action.CREATE
    else:
        action = Action.UPDATE if attributes else Action.NOOP
    return ResourceChange(type=kind.TYPE, name=want["name"], action=action, attributes=attributes,
                          desired=want, live=have)


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
