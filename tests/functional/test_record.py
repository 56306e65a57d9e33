"""The last-applied record against moto: written after a fully successful apply with every
field, never with a secret's value, never after a failed apply, not rewritten for a stack
that already matches it; read by the planner, listed by history; and the read-only policy of
the drift job covers every call that plan, drift and history make.
"""
from __future__ import annotations

import datetime
import fnmatch
import json
import re
from pathlib import Path

import boto3
from lambda_harness import FUNCTION
from moto_harness import REGION, STACK, Echo, inject_error

from reconciler import __version__, record
from reconciler.apply import apply_recorded
from reconciler.kinds import BY_TYPE
from reconciler.kinds.lambda_function import looks_secret
from reconciler.plan import Cause
from reconciler.render import render_history

ROOT = Path(__file__).resolve().parents[2]
SECRET = "correct horse battery staple"


def with_secret(data: dict) -> None:
    data["function"]["environment"]["DB_PASSWORD"] = SECRET


KEY = record.record_key(STACK)


def versions(canvas) -> list[dict]:
    answer = canvas.clients.s3.list_object_versions(Bucket=canvas.names.bucket, Prefix=KEY)
    return [v for v in answer.get("Versions", []) if v["Key"] == KEY]


def stored(canvas) -> dict:
    return json.loads(canvas.clients.s3.get_object(Bucket=canvas.names.bucket, Key=KEY)["Body"].read())


def apply(canvas, plan=None):
    """What `reconcile apply` runs once the plan is approved: the steps, then the record."""
    return apply_recorded(plan or canvas.plan(), canvas.clients, spec=canvas.spec(), echo=Echo())


def test_a_successful_apply_records_every_field_and_no_secret_value(stack, lambda_console):
    stack.write(with_secret)
    lambda_console.make_repository({"canvas:stack": STACK})
    lambda_console.push(b"image one")
    plan = stack.plan()

    applied = apply(stack, plan)

    assert applied.ok and applied.recorded == f"s3://{stack.names.bucket}/canvas/{STACK}/last-applied.json"
    document = stored(stack)
    assert set(document) == {"format_version", "apply_id", "stack", "spec_sha256", "tool_version", "applied_at",
                             "caller_arn", "changes", "desired"}
    assert document["format_version"] == 1 and document["stack"] == STACK
    assert document["spec_sha256"] == stack.spec().sha256
    assert document["tool_version"] == __version__
    assert document["caller_arn"] == boto3.client("sts", region_name=REGION).get_caller_identity()["Arn"]
    applied_at = datetime.datetime.strptime(document["applied_at"], "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((now - applied_at).total_seconds()) < 60
    assert document["changes"] == [{"address": c.address, "action": c.action.value} for c in plan.steps()]
    assert set(document["desired"]) == set(stack.address.values())
    function = document["desired"][stack.address["lambda_function"]]
    assert function["memory"] == 2048 and function["image_digest"] == stack.plan().desired_state[
        stack.address["lambda_function"]]["image_digest"]
    # The secret is kept only as a hash of name and value; the other variables as they are.
    assert SECRET not in json.dumps(document)
    assert function["environment"]["DB_PASSWORD"] == record.secret_digest("DB_PASSWORD", SECRET)
    assert function["environment"]["NODE_ENV"] == "production"


def test_a_secret_changed_by_hand_is_drift_shown_only_as_sensitive(deploy, lambda_console):
    secret_stack = deploy(with_secret)
    apply(secret_stack)
    lambda_console.set_environment({**lambda_console.environment(), "DB_PASSWORD": "hunter2"})

    [change] = secret_stack.plan().drifted
    [attr] = change.attributes
    assert (attr.path, attr.cause) == ("environment.DB_PASSWORD", Cause.DRIFT)
    assert attr.last_applied == record.secret_digest("DB_PASSWORD", SECRET)
    assert attr.shown() == ("(sensitive)", "(sensitive)") and attr.shown_last_applied() == "(sensitive)"


def test_a_failed_apply_leaves_the_record_exactly_as_it_was(deployed, faults):
    apply(deployed)
    before_versions, before = versions(deployed), stored(deployed)
    deployed.write(lambda data: data["function"].update(memory=3008))
    faults(deployed.clients.awslambda, "UpdateFunctionConfiguration", "AccessDeniedException", "not allowed")
    puts = []
    deployed.clients.s3.meta.events.register("before-call.s3.PutObject", lambda **_: puts.append(1))

    failed = apply(deployed)

    assert not failed.ok and failed.failed.address == deployed.address["lambda_function"]
    assert failed.recorded is None and puts == []
    assert versions(deployed) == before_versions and stored(deployed) == before
    # The next plan still compares with the last successful apply: the edit is pending, not drift.
    change = next(c for c in deployed.plan().changes if c.address == deployed.address["lambda_function"])
    assert [(a.path, a.cause, a.last_applied) for a in change.attributes] == [("memory", Cause.SPEC, 2048)]


def test_an_apply_that_changes_nothing_writes_no_new_record(deployed):
    first = apply(deployed)
    assert first.recorded  # no record yet: the converged stack is recorded once
    count = len(versions(deployed))

    again = apply(deployed)

    assert again.ok and again.recorded is None
    assert len(versions(deployed)) == count == 1


def test_an_unreadable_record_is_a_warning_in_the_plan_and_no_cause_is_drift(deployed, lambda_console):
    apply(deployed)
    lambda_console.s3.put_object(Bucket=deployed.names.bucket, Key=KEY, Body=b"{not json")
    lambda_console.lam.update_function_configuration(FunctionName=FUNCTION, MemorySize=1024)

    plan = deployed.plan()

    assert plan.baseline.record is None and "the record is not JSON" in plan.baseline.problem
    assert plan.drifted == () and plan.has_changes


def test_a_record_denied_to_the_caller_is_a_problem_not_a_first_run(deployed):
    apply(deployed)
    remove = inject_error(deployed.clients.s3, "GetObject", "AccessDenied", "Access Denied", status=403)
    try:
        plan = deployed.plan()
    finally:
        remove()
    assert plan.baseline.problem == "AccessDenied: Access Denied" and plan.baseline.record is None


def test_history_lists_every_apply_newest_first(deployed):
    apply(deployed)
    deployed.write(lambda data: data["function"].update(memory=3008))
    apply(deployed)
    deployed.write(lambda data: data["function"].update(memory=3008, timeout=60))
    apply(deployed)

    entries = record.history(deployed.clients, bucket=deployed.names.bucket, stack=STACK)

    function = deployed.address["lambda_function"]
    assert [e["changes"] for e in entries] == [[{"address": function, "action": "update"}]] * 2 + [[]]
    assert [e["desired"][function]["timeout"] for e in entries] == [60, 900, 900]
    assert [e["desired"][function]["memory"] for e in entries] == [3008, 3008, 2048]
    text = render_history(entries, stack=STACK, location="s3://b/k")
    assert text.splitlines()[0] == f"Applies of stack {STACK} recorded in s3://b/k, newest first:"
    assert text.count(f"update {function}") == 2 and "(no changes" in text.splitlines()[-1]
    assert record.history(deployed.clients, bucket=deployed.names.bucket, stack=STACK, limit=1) == entries[:1]


def test_history_of_a_stack_never_applied_is_empty(stack):
    assert record.history(stack.clients, bucket=stack.names.bucket, stack=STACK) == []
    assert render_history([], stack=STACK, location="s3://b/k") == "No applies recorded."


# ---- the drift job's read-only policy ----------------------------------------------------

# The IAM action each API operation needs, where its name is not simply service:Operation.
IAM_ACTION = {
    ("s3", "GetBucketEncryption"): ["s3:GetEncryptionConfiguration"],
    ("s3", "GetPublicAccessBlock"): ["s3:GetBucketPublicAccessBlock"],
    ("s3", "ListObjectVersions"): ["s3:ListBucketVersions"],
    # GetObject of a version is authorised by s3:GetObjectVersion.
    ("s3", "GetObject"): ["s3:GetObject", "s3:GetObjectVersion"],
    # GetFunction returns the tags only to a caller allowed lambda:ListTags.
    ("lambda", "GetFunction"): ["lambda:GetFunction", "lambda:ListTags"],
}
WRITE_WORDS = re.compile(r":(Put|Create|Delete|Update|Attach|Detach|Tag|Untag|Add|Remove|Pass|Replicate|Restore)")


def allowed_actions() -> list[str]:
    policy = json.loads((ROOT / ".github" / "drift-readonly-policy.json").read_text())
    actions = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        found = statement["Action"]
        actions += [found] if isinstance(found, str) else found
    return actions


def test_the_read_only_policy_allows_every_call_plan_drift_and_history_make_and_no_write(deployed):
    apply(deployed)
    deployed.calls.clear()

    plan = deployed.plan()
    record.history(deployed.clients, bucket=deployed.names.bucket, stack=STACK)
    # Every kind was read, so a new kind's read calls fail here until the policy allows them.
    assert {change.type for change in plan.changes} == set(BY_TYPE)

    allowed = allowed_actions()
    needed = {action for service, operation in deployed.calls.calls
              for action in IAM_ACTION.get((service, operation), [f"{service}:{operation}"])}
    assert {"s3:GetObject", "s3:ListBucketVersions", "sts:GetCallerIdentity", "lambda:GetPolicy"} <= needed
    assert [a for a in sorted(needed) if not any(fnmatch.fnmatchcase(a, p) for p in allowed)] == []
    assert [a for a in allowed if WRITE_WORDS.search(a)] == []


def test_the_read_only_policy_reaches_no_object_but_the_records():
    policy = json.loads((ROOT / ".github" / "drift-readonly-policy.json").read_text())
    bucket, stack_name = "code-canvas-astro-db", "code-canvas-astro"  # the contract canvas.yaml's
    objects = [r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                         else s["Resource"]) if r.startswith(f"arn:aws:s3:::{bucket}/")]
    assert objects == [f"arn:aws:s3:::{bucket}/canvas/{stack_name}/*"]
    assert not fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/database/taskManagement.db", objects[0])


def test_looks_secret_is_what_the_record_hashes():
    document = {"name": "f", "environment": {"API_TOKEN": "t", "PORT": "8080", "S3_DB_KEY": "k"}}
    kept = record.recordable("lambda_function", document)
    assert kept["environment"] == {"API_TOKEN": record.secret_digest("API_TOKEN", "t"), "PORT": "8080",
                                   "S3_DB_KEY": "k"}
    assert looks_secret("API_TOKEN", "t") and not looks_secret("PORT", "8080")
    assert document["environment"]["API_TOKEN"] == "t"  # the plan's own document is left alone


def test_a_record_write_retried_after_a_lost_answer_is_listed_once(deployed):
    """A lost answer makes botocore send the same PutObject again: two versions, the same bytes."""
    apply(deployed)
    deployed.write(lambda data: data["function"].update(memory=3008))
    apply(deployed)
    newest = json.loads(deployed.clients.s3.get_object(Bucket=deployed.names.bucket, Key=KEY)["Body"].read())
    record.write(deployed.clients, bucket=deployed.names.bucket, stack=STACK, document=newest)
    assert len(versions(deployed)) == 3

    entries = record.history(deployed.clients, bucket=deployed.names.bucket, stack=STACK)
    assert [e["apply_id"] for e in entries] == [newest["apply_id"], entries[1]["apply_id"]]
    assert entries[0]["apply_id"] != entries[1]["apply_id"]
    assert [e["apply_id"] for e in record.history(deployed.clients, bucket=deployed.names.bucket, stack=STACK,
                                                  limit=2)] == [e["apply_id"] for e in entries]


def test_the_same_apply_written_with_another_etag_is_still_listed_once(deployed):
    """With SSE-KMS the ETag is not the body's MD5; the apply id still tells a retry from an apply."""
    apply(deployed)
    newest = json.loads(deployed.clients.s3.get_object(Bucket=deployed.names.bucket, Key=KEY)["Body"].read())
    record.write(deployed.clients, bucket=deployed.names.bucket, stack=STACK, document={**newest, "padding": 1})
    entries = record.history(deployed.clients, bucket=deployed.names.bucket, stack=STACK)
    assert [e["apply_id"] for e in entries] == [newest["apply_id"]] and entries[0].get("padding") == 1
