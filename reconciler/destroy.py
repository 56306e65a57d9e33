"""`reconcile destroy`: the seed guide's cleanup, made safe.

Builds a Plan of deletes from live state. Only resources tagged for this stack are touched
(a URL and its permissions follow their function's tag); the bucket holds the database and
is kept unless --delete-bucket; a repository holding images is kept unless --force.
"""
from __future__ import annotations

from typing import Any

from reconciler.errors import PlanError, ReconcileError
from reconciler.kinds import BY_TYPE, KINDS, Kind, container_image, ecr_repository, lambda_function, s3_bucket
from reconciler.plan import Action, Plan, ResourceChange
from reconciler.planner import read_live
from reconciler.reserved import STACK_TAG
from reconciler.target import Target


class _DeletableBucket:
    """s3_bucket as destroy --delete-bucket uses it: its delete empties the bucket first. Apply's
    s3_bucket has no delete at all, so apply can never remove the database."""

    delete = staticmethod(s3_bucket.empty_and_delete)

    def __getattr__(self, name: str) -> Any:
        return getattr(s3_bucket, name)


# The same kinds apply uses, except that here the bucket can be deleted (emptied first).
DESTROY_KINDS: dict[str, Kind] = {**BY_TYPE, s3_bucket.TYPE: _DeletableBucket()}
# Resources without tags of their own, and the tagged resource whose owner they follow.
_FOLLOWS_FUNCTION = ("lambda_function_url", "lambda_permission")


def check_bucket_confirmation(bucket: str, *, delete_bucket: bool, auto_approve: bool,
                              confirm_bucket: str | None) -> None:
    """Deleting the bucket without a prompt needs its name given as --confirm-bucket: the
    bucket holds the database, and typing its name is the confirmation."""
    if not (delete_bucket and auto_approve):
        return
    if confirm_bucket is None:
        raise ReconcileError(f"--delete-bucket with --auto-approve also needs --confirm-bucket {bucket}: "
                             "the bucket holds the database, and its name is the confirmation")
    if confirm_bucket != bucket:
        raise ReconcileError(f"--confirm-bucket {confirm_bucket!r} is not this stack's bucket {bucket!r}; "
                             "nothing was deleted — check canvas.yaml (-f) and the name")


def confirmation_word(plan: Plan, bucket: str) -> str:
    """What the prompt asks to be typed: the bucket's name when the plan deletes it, else yes."""
    return bucket if any(c.type == s3_bucket.TYPE for c in plan.pending) else "yes"


def build_destroy_plan(spec, clients, *, target: Target, force: bool, delete_bucket: bool) -> Plan:
    # Images go with their repository; leaving container_image out also spares destroy from
    # hashing a build context that may be long gone.
    wants, lives, problems = read_live(clients, spec, target, tuple(k for k in KINDS if k is not container_image))
    if problems:
        raise PlanError(problems)
    function = next((lives[f"{k.TYPE}.{w['name']}"] for k, w in wants if k is lambda_function), None)
    changes, notes = [], []
    for kind, want in wants:
        address = f"{kind.TYPE}.{want['name']}"
        have = lives[address]
        if have is None:
            continue
        owner_doc = function if kind.TYPE in _FOLLOWS_FUNCTION else have
        if (owner_doc or {}).get("tags", {}).get(STACK_TAG) != spec.stack:
            notes.append(f"left alone: {address} (not tagged {STACK_TAG}={spec.stack})")
            continue
        change, note = _delete(kind, address, have, clients, force=force, delete_bucket=delete_bucket)
        if change:
            changes.append(change)
        if note:
            notes.append(note)
    return Plan(stack=spec.stack, region=target.region, changes=tuple(changes), notes=tuple(notes))


def _delete(kind, address: str, have: dict, clients, *, force: bool, delete_bucket: bool):
    note = None
    if kind is s3_bucket:
        if not delete_bucket:
            return None, f"kept: {address} (it holds the database; pass --delete-bucket to delete it)"
        lost = s3_bucket.contents(clients, have["name"])
        note = (f"{lost['objects']} object(s), {lost['versions']} version(s) and "
                f"{lost['delete_markers']} delete marker(s) will be lost")
    if kind is ecr_repository:
        images = ecr_repository.image_count(clients, have)
        if images and not force:
            return None, f"kept: {address} (it holds {images} image(s); pass --force to delete them with it)"
        have = {**have, "force": bool(images)}
    return ResourceChange(type=kind.TYPE, name=have["name"], action=Action.DELETE, live=have, note=note), None
