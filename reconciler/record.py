"""The last-applied record: what the last successful apply set, kept in the stack's own bucket.

`canvas/<stack>/last-applied.json` holds the normalized desired state the plan computed,
the spec's hash, the tool version, the time and the caller's ARN. The bucket's versioning
keeps every earlier record, so the object's versions are the history of applies.

With it a plan tells two kinds of difference apart, attribute by attribute:
  drift — live AWS no longer is what was last applied (someone changed AWS);
  spec  — canvas.yaml no longer says what was last applied (a change not applied yet);
  both  — the two at once.
The comparison (`with_causes`) is pure; reading and writing the object are the only I/O.

Environment values that look secret are recorded as a hash of name and value, never as the
value, and compared as hashes. The runtime's role cannot reach canvas/: its policy names
only the database object, and `validate` keeps the database out of canvas/.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import json
import uuid
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from reconciler import __version__
from reconciler.aws import describe_connection_error, error_code, error_message
from reconciler.diff import Field, lookup
from reconciler.errors import ReconcileError
from reconciler.kinds import BY_TYPE
from reconciler.plan import AttributeChange, Baseline, Cause, Plan, ResourceChange
from reconciler.reserved import RECORD_PREFIX
from reconciler.threads import read_pool

FORMAT_VERSION = 1
_ABSENT_ANSWERS = ("NoSuchKey", "NoSuchBucket", "404", "NotFound")


class RecordError(ReconcileError):
    """The changes were made, but the record of them could not be written."""


def record_key(stack: str) -> str:
    return f"{RECORD_PREFIX}{stack}/last-applied.json"


def location(bucket: str, stack: str) -> str:
    return f"s3://{bucket}/{record_key(stack)}"


# --- secrets ------------------------------------------------------------------------------

def secret_digest(name: str, value: str) -> str:
    """What the record keeps of a secret-looking value. The name is hashed with it, so two
    variables holding the same secret do not show it by having the same hash."""
    return "sha256:" + hashlib.sha256(f"{name}={value}".encode()).hexdigest()


def _sensitive(field: Field, key: str, value: Any) -> bool:
    return bool(field.sensitive and value is not None and field.sensitive(key, value))


def recordable(resource_type: str, document: Mapping) -> dict:
    """The document as the record keeps it: secret-looking values of a kind's sensitive
    fields replaced by their digest (driven by the kind's FIELDS table)."""
    out = copy.deepcopy(dict(document))
    kind = BY_TYPE.get(resource_type)
    for field in kind.FIELDS if kind is not None else ():
        mapping = lookup(out, field.path)
        if field.sensitive and field.per_key and isinstance(mapping, dict):
            for key, value in mapping.items():
                if _sensitive(field, key, value):
                    mapping[key] = secret_digest(key, value)
    return out


def recordable_state(desired_state: Mapping[str, dict]) -> dict[str, dict]:
    return {address: recordable(address.split(".", 1)[0], doc) for address, doc in desired_state.items()}


# --- causes (pure) --------------------------------------------------------------------------

def with_causes(kind, change: ResourceChange, baseline: Baseline | None) -> ResourceChange:
    """The change with each attribute's cause judged against the last apply's record.
    No record, or a resource the record does not know: every attribute is `spec`."""
    recorded_state = baseline.recorded_desired if baseline else None
    if not change.attributes or recorded_state is None or change.address not in recorded_state:
        return change
    recorded = recorded_state[change.address]
    then = None if recorded.get("absent") else recorded
    want = None if (change.desired or {}).get("absent") else change.desired
    attributes = tuple(_classified(kind.FIELDS, attr, want=want, have=change.live, then=then)
                       for attr in change.attributes)
    return dataclasses.replace(change, attributes=attributes)


def _classified(fields, attr: AttributeChange, *, want: Mapping | None, have: Mapping | None,
                then: Mapping | None) -> AttributeChange:
    field = next((candidate for candidate in fields if candidate.path == attr.field_path), None)
    if field is None:
        return attr  # not made by diff() (a revived saved plan carries its cause already)
    key = attr.key
    known, recorded = _recorded_value(field, key, then)
    if not known:
        return attr  # the last apply left it unmanaged: only canvas.yaml can have changed
    wanted, live = _value(field, key, want), _value(field, key, have)
    if field.per_key and key is not None and _sensitive(field, key, wanted if wanted is not None else live):
        wanted, live = (None if v is None else secret_digest(key, v) for v in (wanted, live))
    spec, drift = not field.same(wanted, recorded), not field.same(live, recorded)
    cause = Cause.BOTH if spec and drift else Cause.DRIFT if drift else Cause.SPEC
    return dataclasses.replace(attr, cause=cause, last_applied=recorded)


def _recorded_value(field: Field, key: str | None, then: Mapping | None) -> tuple[bool, Any]:
    """(whether the record says anything about it, the value it recorded)."""
    if then is None:
        return True, None  # recorded as absent: every attribute was absent
    if not field.per_key:
        value = lookup(then, field.path)
        return value is not None, value
    mapping = lookup(then, field.path)
    if mapping is None:
        return False, None
    # A purged mapping (environment, inline policies) was exactly these keys: a key missing
    # from it was recorded as absent. Elsewhere (tags) a missing key was simply unmanaged.
    return (field.purge or key in mapping), mapping.get(key)


def _value(field: Field, key: str | None, document: Mapping | None) -> Any:
    if document is None:
        return None
    value = lookup(document, field.path)
    if field.per_key:
        return (value or {}).get(key)
    return value


# --- reading --------------------------------------------------------------------------------

def read_baseline(clients, *, bucket: str, stack: str) -> Baseline:
    """The last record, read with GetObject; no bucket or no object is no record (first run).
    Any other failure is kept as the baseline's problem, so a plan still works without it."""
    where = location(bucket, stack)
    try:
        answer = clients.s3.get_object(Bucket=bucket, Key=record_key(stack))
    except ClientError as exc:
        if error_code(exc) in _ABSENT_ANSWERS:
            return Baseline(where)
        return Baseline(where, problem=f"{error_code(exc)}: {error_message(exc)}")
    except BotoCoreError as exc:
        return Baseline(where, problem=describe_connection_error(exc) or str(exc))
    try:
        return Baseline(where, record=parse(answer["Body"].read(), stack=stack))
    except ValueError as exc:
        return Baseline(where, problem=str(exc))


def parse(raw: bytes, *, stack: str) -> dict:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"the record is not JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("desired"), dict):
        raise ValueError("the record has no `desired` state")
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"the record has format_version {document.get('format_version')!r}; this "
                         f"canvas-reconcile reads {FORMAT_VERSION} — upgrade it")
    if document.get("stack") != stack:
        raise ValueError(f"the record is for stack {document.get('stack')!r}, not {stack!r}")
    return document


# --- writing --------------------------------------------------------------------------------

def build(plan: Plan, *, spec_sha256: str, caller_arn: str, done: list[ResourceChange],
          recorded: dict[str, dict], now: datetime.datetime) -> dict:
    """The record's document; `recorded` is the desired state already in recorded form."""
    return {
        "format_version": FORMAT_VERSION,
        # One per apply: a PUT retried after its answer was lost writes the same bytes again
        # as a second version, and history shows it once (see _one_per_apply).
        "apply_id": uuid.uuid4().hex,
        "stack": plan.stack,
        "spec_sha256": spec_sha256,
        "tool_version": __version__,
        "applied_at": now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "caller_arn": caller_arn,
        "changes": [{"address": c.address, "action": c.action.value} for c in done],
        "desired": recorded,
    }


def needs_writing(plan: Plan) -> bool:
    """Every apply that changed something is recorded. One that changed nothing is recorded
    only when the record is missing or says something else (a stack converged before the
    record existed, or by a canvas.yaml whose managed values were since set by hand to match):
    a converged stack with a current record gets no write at all."""
    if plan.has_changes:
        return True
    baseline = plan.baseline
    if baseline is None or baseline.problem:
        return False
    return baseline.recorded_desired != recordable_state(plan.desired_state)


def write(clients, *, bucket: str, stack: str, document: dict) -> str:
    """Put the record; returns its location. Failures become a RecordError saying what follows."""
    try:
        clients.s3.put_object(Bucket=bucket, Key=record_key(stack), ContentType="application/json",
                              Body=json.dumps(document, indent=2, sort_keys=True).encode())
    except (ClientError, BotoCoreError) as exc:
        reason = describe_connection_error(exc) or f"{error_code(exc)}: {error_message(exc)}"
        raise RecordError(
            f"the changes were made, but the record of them could not be written to {location(bucket, stack)}: "
            f"{reason} — until an apply records them, plan and drift will report them as drift; "
            f"the caller needs s3:PutObject on arn:aws:s3:::{bucket}/{RECORD_PREFIX}{stack}/*") from exc
    return location(bucket, stack)


def caller_arn(clients) -> str:
    return clients.sts.get_caller_identity()["Arn"]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def record_apply(plan: Plan, clients, *, spec, done: list[ResourceChange],
                 now: Callable[[], datetime.datetime] = _utcnow, force: bool = False) -> str | None:
    """Record a fully successful apply of `plan` (see needs_writing; force: this run made changes
    the plan no longer shows, the bucket made before the lock); the location, or None."""
    if not force and not needs_writing(plan):
        return None
    document = build(plan, spec_sha256=spec.sha256, caller_arn=caller_arn(clients), done=done,
                     recorded=recordable_state(plan.desired_state), now=now())
    return write(clients, bucket=spec.bucket["name"], stack=spec.stack, document=document)


def record_destroy(plan: Plan, clients, *, spec, done: list[ResourceChange],
                   now: Callable[[], datetime.datetime] = _utcnow) -> str | None:
    """After a destroy that kept the bucket: the last record with each deleted resource now
    recorded as absent, so what destroy removed is not reported as drift afterwards."""
    if any(c.type == "s3_bucket" for c in done):
        return None  # the bucket, and every record in it, is gone
    baseline = read_baseline(clients, bucket=spec.bucket["name"], stack=spec.stack)
    if baseline.problem:
        raise RecordError(f"the resources were deleted, but the record at {baseline.location} could not be "
                          f"read to note it: {baseline.problem}")
    recorded = {**(baseline.recorded_desired or {}), **{c.address: {"name": c.name, "absent": True} for c in done}}
    document = build(plan, spec_sha256=spec.sha256, caller_arn=caller_arn(clients), done=done,
                     recorded=recorded, now=now())
    return write(clients, bucket=spec.bucket["name"], stack=spec.stack, document=document)


# --- history --------------------------------------------------------------------------------

def history(clients, *, bucket: str, stack: str, limit: int | None = None) -> list[dict]:
    """Every recorded apply, newest first, each with its object version id."""
    key = record_key(stack)
    versions = []
    try:
        for page in clients.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            versions += [v for v in page.get("Versions", []) if v["Key"] == key]
    except ClientError as exc:
        # Only S3's own word that the bucket is not there means "never applied"; a bare 404 may
        # be a web server that is not S3 at all, and must not read as an empty history.
        if error_code(exc) == "NoSuchBucket":
            return []
        raise
    versions.sort(key=lambda v: v["LastModified"], reverse=True)
    # Identical adjacent bodies (same ETag) are one write retried: dropped before reading, so
    # --limit N still shows N applies.
    versions = [v for i, v in enumerate(versions) if i == 0 or v.get("ETag") != versions[i - 1].get("ETag")]
    versions = versions[:limit] if limit else versions
    with read_pool(min(8, len(versions))) as pool:
        reads = [pool.submit(_version, clients, bucket, key, v["VersionId"]) for v in versions]
    documents = [read.result() for read in reads]
    return _one_per_apply([{**doc, "version_id": v["VersionId"]} for v, doc in zip(versions, documents, strict=True)])


def _one_per_apply(entries: list[dict]) -> list[dict]:
    """Adjacent versions of one apply (same apply_id; an ETag that is not the body's MD5, as
    with SSE-KMS, hides the repeat from the listing) count once: the newest is kept."""
    kept: list[dict] = []
    for entry in entries:
        if kept and entry.get("apply_id") and entry.get("apply_id") == kept[-1].get("apply_id"):
            continue
        kept.append(entry)
    return kept


def _version(clients, bucket: str, key: str, version_id: str) -> dict:
    # An object written while versioning was off has the version id "null".
    extra = {} if version_id in (None, "null") else {"VersionId": version_id}
    body = clients.s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    try:
        return json.loads(body)
    except ValueError:
        return {"applied_at": None, "caller_arn": None, "spec_sha256": None, "changes": [],
                "unreadable": True}

