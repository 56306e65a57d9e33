"""The stack's lock: one apply or destroy at a time, as Terraform's S3 backend has.

The lock is the object canvas/<stack>/lock.json in the stack's bucket, beside the
last-applied record, created with a conditional put (If-None-Match: *): S3 lets exactly one
of two racing writers create it. It holds who (the caller's ARN), where (host and process),
when, the operation and the hash of the plan being applied, and an id that force-unlock
names. It is removed when the command ends, on success, failure or Ctrl-C; a kill -9 leaves
it behind, and `reconcile force-unlock ID` removes it.

plan, drift, outputs and history never touch it: they stay strictly read-only.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import time
import uuid
from typing import Callable, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.aws import error_code, error_message
from reconciler.errors import ReconcileError
from reconciler.record import caller_arn
from reconciler.reserved import RECORD_PREFIX

# A lost answer to our own conditional put is retried by botocore and refused with 412:
# the lock's id tells "ours after all" from "someone else's".
_TAKEN = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
_GONE = ("NoSuchKey", "404", "NotFound", "NoSuchBucket")
POLL_SECONDS = 2.0


class LockHeld(ReconcileError):
    """Another apply or destroy holds the stack's lock."""


def lock_key(stack: str) -> str:
    return f"{RECORD_PREFIX}{stack}/lock.json"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def read(clients, *, bucket: str, stack: str) -> dict | None:
    """The lock's document, or None when nobody holds it."""
    try:
        body = clients.s3.get_object(Bucket=bucket, Key=lock_key(stack))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in _GONE:
            return None
        raise
    try:
        return json.loads(body)
    except ValueError:
        return {"id": "(unreadable)", "who": "?", "where": "?", "when": None, "operation": "?"}


def describe(holder: dict, now: datetime.datetime) -> str:
    age = "an unknown time"
    with contextlib.suppress(TypeError, ValueError):
        seconds = int((now - datetime.datetime.fromisoformat(holder["when"].replace("Z", "+00:00"))).total_seconds())
        age = _age(max(seconds, 0))
    return (f"{holder.get('operation', '?')} by {holder.get('who', '?')} on {holder.get('where', '?')}, "
            f"held for {age} (lock id {holder.get('id', '?')})")


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def try_acquire(clients, *, bucket: str, stack: str, document: dict) -> dict | None:
    """Create the lock; None when it is now ours, else the current holder's document."""
    try:
        answer = clients.s3.put_object(Bucket=bucket, Key=lock_key(stack), IfNoneMatch="*",
                                       ContentType="application/json",
                                       Body=json.dumps(document, indent=2, sort_keys=True).encode())
        document["_version_id"] = answer.get("VersionId")
        return None
    except ClientError as exc:
        if error_code(exc) not in _TAKEN:
            raise ReconcileError(f"cannot take the stack's lock s3://{bucket}/{lock_key(stack)}: "
                                 f"{error_code(exc)}: {error_message(exc)} — apply and destroy need "
                                 f"s3:PutObject, s3:GetObject and s3:DeleteObject on it") from exc
    holder = read(clients, bucket=bucket, stack=stack)
    if holder is not None and holder.get("id") == document["id"]:
        document["_version_id"] = None  # our own put worked; only its answer (and version id) was lost
        return None
    return holder or {}  # released between our put and the read: try again


def release(clients, *, bucket: str, stack: str, lock_id: str, version_id: str | None = None) -> None:
    """Remove the lock if it is still ours (a force-unlock may have handed it on). In a
    versioned bucket its own version is deleted, so no lock history or delete marker piles
    up beside the records; without s3:DeleteObjectVersion a plain delete still unlocks."""
    with contextlib.suppress(ClientError, BotoCoreError):
        holder = read(clients, bucket=bucket, stack=stack)
        if holder is None or holder.get("id") != lock_id:
            return
        if version_id and version_id != "null":
            try:
                clients.s3.delete_object(Bucket=bucket, Key=lock_key(stack), VersionId=version_id)
                return
            except ClientError:
                pass
        clients.s3.delete_object(Bucket=bucket, Key=lock_key(stack))


@contextlib.contextmanager
def held(clients, *, bucket: str, stack: str, operation: str, plan_sha256: str | None = None,
         timeout: float = 0.0, notify: Callable[[str], None] = lambda message: None,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         now: Callable[[], datetime.datetime] = _utcnow) -> Iterator[dict]:
    """Hold the stack's lock for the block; wait up to `timeout` seconds for it, else LockHeld."""
    document = {
        "id": str(uuid.uuid4()), "who": caller_arn(clients), "where": f"{socket.gethostname()} pid {os.getpid()}",
        "when": now().strftime("%Y-%m-%dT%H:%M:%SZ"), "operation": operation, "plan_sha256": plan_sha256,
    }
    deadline, waited = clock() + timeout, False
    while True:
        holder = try_acquire(clients, bucket=bucket, stack=stack, document=document)
        if holder is None:
            break
        if holder and clock() >= deadline:
            hint = ("still held after waiting; " if waited else "") + (
                "wait for it to finish, or retry with --lock-timeout 5m to wait; if its process is gone "
                f"(killed), remove it with `reconcile force-unlock {holder.get('id', '?')}`")
            raise LockHeld(f"the stack {stack} is locked: {describe(holder, now())} — {hint}")
        if holder and not waited:
            notify(f"waiting for the lock: {describe(holder, now())}")
            waited = True
        sleep(POLL_SECONDS if holder else 0)
    try:
        yield document
    finally:
        release(clients, bucket=bucket, stack=stack, lock_id=str(document["id"]),
                version_id=document.pop("_version_id"))


def force_unlock(clients, *, bucket: str, stack: str, lock_id: str) -> dict:
    """Remove the lock named by lock_id; the holder's document it removed."""
    holder = read(clients, bucket=bucket, stack=stack)
    if holder is None:
        raise ReconcileError(f"the stack {stack} is not locked; nothing to unlock")
    if holder.get("id") != lock_id:
        raise ReconcileError(f"the lock's id is {holder.get('id')}, not {lock_id}: {describe(holder, _utcnow())} "
                             "— nothing was removed")
    clients.s3.delete_object(Bucket=bucket, Key=lock_key(stack))
    return holder


def parse_timeout(text: str) -> float:
    """--lock-timeout: 30s, 5m, 1h or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise ReconcileError(f"--lock-timeout {text!r}: give a duration such as 30s, 5m or 1h") from None
    if seconds < 0:
        raise ReconcileError(f"--lock-timeout {text!r}: a duration cannot be negative")
    return seconds
