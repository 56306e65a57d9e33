"""What a create does when AWS refuses it because the resource already exists.

That refusal usually means our own earlier attempt worked and its answer was lost (botocore
retried a create whose response never arrived), or another apply of this stack made it a
moment ago. Either way the resource is re-read: if it is this stack's (its canvas:stack tag),
or carries no stack tag and matches what the create asked for, the step carries on as an
update of whatever still differs. A foreign stack's resource is refused exactly as plan
refuses it. Only the create call's "already exists" codes lead here; nothing else is retried.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from reconciler.aws import error_code, error_message
from reconciler.diff import diff
from reconciler.errors import ReconcileError
from reconciler.reserved import STACK_TAG

# S3's BucketAlreadyExists (someone else's bucket, in any account) is deliberately absent:
# that bucket can never be ours.
ALREADY_EXISTS = frozenset({
    "BucketAlreadyOwnedByYou", "EntityAlreadyExists", "ResourceConflictException",
    "RepositoryAlreadyExistsException",
})


def already_exists(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in ALREADY_EXISTS


def create_or_adopt(kind, want: dict, clients, *, stack: str) -> None:
    """kind.create; on an "already exists" refusal, adopt the resource if it is ours and update it."""
    try:
        kind.create(clients, want)
    except ClientError as exc:
        if not already_exists(exc):
            raise
        have = kind.read(clients, want)
        if have is None:
            raise  # exists and yet cannot be read: nothing safe to do but report AWS's answer
        adopt(kind, want, have, clients, stack=stack, refusal=exc)


def adopt(kind, want: dict, have: dict, clients, *, stack: str, refusal: ClientError) -> None:
    address = f"{kind.TYPE}.{want['name']}"
    owner = (have.get("tags") or {}).get(STACK_TAG)
    if owner and owner != stack:
        raise ReconcileError(
            f"{address} belongs to stack {owner!r} (tag {STACK_TAG}), not to {stack!r}; "
            "it was left untouched — use another name in canvas.yaml, or retag it if it really is this stack's")
    differing = [a.path for a in diff(kind.FIELDS, want, have)]
    if not owner and "tags" in {f.path for f in kind.FIELDS}:
        # Untagged: ours only if it is what our create asked for, apart from what the create's
        # own follow-up calls set (tags and the settings put after the create call).
        mismatched = [p for p in differing if p.split(".", 1)[0] in kind.CREATE_CALL_FIELDS]
        if mismatched:
            raise ReconcileError(
                f"{address} already exists, untagged, and differs from canvas.yaml in {', '.join(mismatched)}; "
                f"it was left untouched — it may not be this stack's ({error_code(refusal)}: "
                f"{error_message(refusal)})")
    clients.notify(f"already exists ({error_code(refusal)}): it is this stack's, "
                   f"so {'updating ' + ', '.join(differing) if differing else 'nothing left to do'}")
    if not differing:
        return
    if kind.update is None:
        raise ReconcileError(f"{address} already exists and differs in {', '.join(differing)}; "
                             "run `reconcile apply` again to replace it")
    kind.update(clients, want, have, differing)
