"""`reconcile apply` under injected faults (issue 10, item 6): the CLI as a user runs it, its every
AWS call passing through tests/faults.FaultProxy on loopback in front of the moto server.

Each case starts from nothing (the image built by the fake docker) and asserts that the fault
really fired, so a case can never pass because its fault missed. Counts are kept small:
one case per fault kind and per write call, a few kill points, one race of each kind; the
larger matrix is bench/fault_matrix.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal

import boto3
import botocore.config
import botocore.exceptions
import pytest

from tests.e2e.conftest import BUCKET, BUILD_CONTEXT, FUNCTION, STACK, Run
from tests.faults import CONFLICT, SERVER_ERROR, operation_of

LOCK_KEY = f"canvas/{STACK}/lock.json"
RECORD_KEY = f"canvas/{STACK}/last-applied.json"
HOLD = 20.0  # how long a held call waits for the kill; far longer than the kill takes
KILL_WAIT = 60.0

# Every write call an apply from nothing makes, in order, with a text that tells apart two
# calls of one operation (the fake docker's PutImage is not the tool's call, so it is not
# here). test_the_write_calls_are_all_covered keeps this true.
LOCK, RECORD = "lock.json", "last-applied.json"
URL_SID, INVOKE_SID = '"FunctionURLAllowPublicAccess"', '"FunctionURLInvokeAllowPublicAccess"'
WRITES = [
    ("s3", "CreateBucket", None), ("s3", "PutBucketTagging", None), ("s3", "PutBucketVersioning", None),
    ("s3", "PutBucketEncryption", None), ("s3", "PutPublicAccessBlock", None), ("s3", "PutObject", LOCK),
    ("ecr", "CreateRepository", None), ("iam", "CreateRole", None), ("iam", "AttachRolePolicy", None),
    ("iam", "PutRolePolicy", None), ("lambda", "CreateFunction", None), ("lambda", "CreateFunctionUrlConfig", None),
    ("lambda", "AddPermission", URL_SID), ("lambda", "AddPermission", INVOKE_SID),
    ("s3", "PutObject", RECORD), ("s3", "DeleteObject", LOCK),
]
# moto accepts these a second time (a second URL config; the same statement id again, which
# it then holds twice) where AWS refuses with ResourceConflictException: a lost response's
# retry is answered with AWS's refusal by the proxy, so the adoption AWS needs is exercised.
MOTO_ACCEPTS_TWICE = {("lambda", "CreateFunctionUrlConfig"), ("lambda", "AddPermission")}
READS = ("Get", "List", "Describe", "Head")


@pytest.fixture
def from_nothing(canvas_file, fake_docker, fault_proxy, monkeypatch):
    """An empty emulator behind the proxy, the contract's canvas.yaml with its build context, and
    the fake docker on PATH; the fake docker pushes through the proxy too, but rules only ever
    touch the tool's own calls."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)  # fake_docker pointed it at moto itself
    return fault_proxy


def finish(proc, timeout: float = 120) -> Run:
    out, err = proc.communicate(timeout=timeout)
    return Run(proc.returncode, out, err)


def assert_converged(run: Run, reconcile) -> None:
    """Exit 0 in one run, no failed step, no traceback, and nothing left to do."""
    text = run.out + run.err
    assert run.code == 0, text
    assert "FAIL" not in text and "Traceback" not in text, text
    assert "Apply complete" in run.out or "No changes." in run.out, text
    plan = reconcile("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err


def assert_unlocked(aws) -> None:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY).get("Contents", [])
    assert listed == [], f"the lock {LOCK_KEY} was left behind"


# --- the proxy itself ------------------------------------------------------------------------------

PROBES = {  # service: a read-only call, and the throttling code and status AWS sends for it
    "s3": (lambda c: c.list_buckets(), "SlowDown", 503),
    "iam": (lambda c: c.list_roles(), "Throttling", 400),
    "sts": (lambda c: c.get_caller_identity(), "Throttling", 400),
    "ecr": (lambda c: c.describe_repositories(), "ThrottlingException", 400),
    "lambda": (lambda c: c.list_functions(), "TooManyRequestsException", 429),
}


@pytest.mark.parametrize("service", PROBES)
def test_botocore_reads_each_injected_error_as_that_service_s_own(service, fault_proxy):
    """The shapes are right: botocore parses them into the codes its retry handler knows, and
    the operation is named as botocore names it."""
    call, code, status = PROBES[service]
    client = boto3.client(service, region_name="us-west-2", endpoint_url=fault_proxy.url,
                          config=botocore.config.Config(retries={"total_max_attempts": 1}))
    fault_proxy.add("throttle", service=service, agent=None)
    fault_proxy.add("server_error", service=service, status=503, agent=None)
    for expected_code, expected_status in ((code, status), (SERVER_ERROR[service], 503)):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            call(client)
        assert refused.value.response["Error"]["Code"] == expected_code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == expected_status
    call(client)  # both rules spent: forwarded to the emulator
    assert [c.fault for c in fault_proxy.calls] == ["throttle", "server_error", None]
    assert len({c.operation for c in fault_proxy.calls}) == 1 and fault_proxy.calls[0].service == service


@pytest.mark.parametrize("service, method, target, operation", [
    ("s3", "PUT", "/code-canvas-astro-db", "CreateBucket"),
    ("s3", "PUT", "/code-canvas-astro-db?versioning", "PutBucketVersioning"),
    ("s3", "GET", "/code-canvas-astro-db/canvas/x/lock.json", "GetObject"),
    ("s3", "GET", "/code-canvas-astro-db/canvas/x/lock.json?uploadId=1", "ListParts"),
    ("s3", "DELETE", "/code-canvas-astro-db/canvas/x/lock.json?versionId=v", "DeleteObject"),
    ("lambda", "POST", "/2015-03-31/functions/f/policy", "AddPermission"),
    ("lambda", "GET", "/2015-03-31/functions/f/policy", "GetPolicy"),
    ("lambda", "POST", "/2021-10-31/functions/f/url", "CreateFunctionUrlConfig"),
    ("lambda", "PUT", "/2015-03-31/functions/f/configuration", "UpdateFunctionConfiguration"),
    ("iam", "POST", "/", "CreateRole"),
])
def test_the_operation_is_named_from_the_request_as_botocore_names_it(service, method, target, operation):
    form = {"Content-Type": "application/x-www-form-urlencoded"} if service == "iam" else {}
    assert operation_of(service, method, target, form, b"Action=CreateRole&Version=2010-05-08") == operation


# --- (a) one apply from nothing under each kind of fault ----------------------------------------

FAULT_CASES = {
    # Throttling in each service's own error shape, once per service on its first call ...
    "throttle-each-service": [dict(fault="throttle", service=service)
                              for service in ("s3", "iam", "sts", "ecr", "lambda")],
    # ... and once on each service's create.
    "throttle-creates": [dict(fault="throttle", service="s3", operation="CreateBucket"),
                         dict(fault="throttle", service="ecr", operation="CreateRepository"),
                         dict(fault="throttle", service="iam", operation="CreateRole"),
                         dict(fault="throttle", service="lambda", operation="CreateFunction")],
    "5xx": [dict(fault="server_error", status=500, service="ecr", operation="CreateRepository"),
            dict(fault="server_error", status=503, service="lambda", operation="CreateFunctionUrlConfig"),
            dict(fault="server_error", status=500, service="iam", operation="PutRolePolicy"),
            dict(fault="server_error", status=503, service="s3", operation="PutBucketVersioning"),
            dict(fault="server_error", status=500, service="sts", operation="GetCallerIdentity")],
    "reset-before": [dict(fault="reset_before", service="s3", operation="PutObject"),
                     dict(fault="reset_before", service="iam", operation="CreateRole"),
                     dict(fault="reset_before", service="lambda", operation="AddPermission")],
    "latency": [dict(fault="latency", delay=1.0, service="s3", operation="CreateBucket"),
                dict(fault="latency", delay=1.0, service="iam", operation="AttachRolePolicy"),
                dict(fault="latency", delay=2.0, service="lambda", operation="CreateFunction")],
}


@pytest.mark.parametrize("case", FAULT_CASES)
def test_apply_from_nothing_converges_in_one_run_under(case, from_nothing, reconcile, aws):
    rules = [from_nothing.add(**how) for how in FAULT_CASES[case]]

    run = reconcile("apply", "--auto-approve")

    assert [r.fired for r in rules] == [r.times for r in rules], from_nothing.calls
    assert_converged(run, reconcile)
    assert_unlocked(aws)


# --- (b) a lost response on each write call ------------------------------------------------------

def test_the_write_calls_are_all_covered(from_nothing, reconcile):
    """WRITES is every write an apply from nothing makes: a new create call must be added there."""
    run = reconcile("apply", "--auto-approve")
    assert run.code == 0, run.out + run.err
    writes = [(s, o) for s, o in from_nothing.operations() if not o.startswith(READS) and (s, o) != ("ecr", "PutImage")
              and (s, o) != ("ecr", "GetAuthorizationToken") and (s, o) != ("sts", "GetCallerIdentity")]
    assert writes == [(s, o) for s, o, _ in WRITES]
    texts = [c for c in WRITES if c[2]]
    assert len(texts) == len({(s, o, t) for s, o, t in texts}) == 5


# Each create on its own; the calls whose retry simply repeats them (puts, attaches) in groups.
LOST = {
    "CreateBucket": [("s3", "CreateBucket", None)],
    "CreateRepository": [("ecr", "CreateRepository", None)],
    "CreateRole": [("iam", "CreateRole", None)],
    "CreateFunction": [("lambda", "CreateFunction", None)],
    "CreateFunctionUrlConfig": [("lambda", "CreateFunctionUrlConfig", None)],
    "AddPermission": [("lambda", "AddPermission", URL_SID), ("lambda", "AddPermission", INVOKE_SID)],
    "bucket-settings": [("s3", op, None) for op in ("PutBucketTagging", "PutBucketVersioning", "PutBucketEncryption",
                                                    "PutPublicAccessBlock")],
    "role-policies": [("iam", "AttachRolePolicy", None), ("iam", "PutRolePolicy", None)],
    "lock-and-record": [("s3", "PutObject", LOCK), ("s3", "PutObject", RECORD), ("s3", "DeleteObject", LOCK)],
}


def test_every_write_call_loses_its_response_in_some_case():
    assert sorted(w for calls in LOST.values() for w in calls) == sorted(WRITES)


@pytest.mark.parametrize("case", LOST)
def test_a_lost_response_is_absorbed_in_one_run(case, from_nothing, reconcile, aws):
    """The emulator performs the call and the answer is lost (the connection reset after it):
    botocore retries, and the retry finds its own work already done."""
    rules = [from_nothing.add("reset_after", service=service, operation=operation, contains=text,
                              refuse_retry=CONFLICT if (service, operation) in MOTO_ACCEPTS_TWICE else None)
             for service, operation, text in LOST[case]]

    run = reconcile("apply", "--auto-approve")

    assert [r.fired for r in rules] == [1] * len(rules), from_nothing.calls
    assert [r.refused for r in rules] == [1 if r.refuse_retry else 0 for r in rules], from_nothing.calls
    assert_converged(run, reconcile)
    assert_unlocked(aws)


# --- (c) kill -9 in the middle of an apply, then apply again ----------------------------------------

KILL_POINTS = {
    # (service, operation, which, held before or after the emulator performs it, lock left behind)
    "before-CreateBucket": ("s3", "CreateBucket", None, "latency", False),
    "after-CreateRole": ("iam", "CreateRole", None, "hold_after", True),
    "after-record-written": ("s3", "PutObject", RECORD, "hold_after", True),
}


def lock_id_from(run: Run) -> str:
    found = re.search(r"reconcile force-unlock (\S+?)`", run.out + run.err)
    assert found, run.out + run.err
    return found.group(1)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_after_kill_9_a_force_unlock_and_one_apply_converge(point, from_nothing, reconcile, start_reconcile, aws):
    service, operation, text, hold, lock_left = KILL_POINTS[point]
    rule = from_nothing.add(hold, service=service, operation=operation, contains=text, delay=HOLD)
    proc = start_reconcile("apply", "--auto-approve")
    try:
        assert rule.hit.wait(KILL_WAIT), f"apply never reached {operation}: {from_nothing.calls}"
        os.kill(proc.pid, signal.SIGKILL)
        killed = finish(proc, timeout=30)
    finally:
        rule.cancel()  # a held request is dropped now, never forwarded after the kill
        if proc.poll() is None:
            proc.kill()
    assert killed.code == -signal.SIGKILL

    again = reconcile("apply", "--auto-approve")
    if lock_left:
        assert again.code == 1 and f"the stack {STACK} is locked: apply by arn:aws:" in again.out + again.err, \
            again.out + again.err
        unlocked = reconcile("force-unlock", lock_id_from(again), "--auto-approve")
        assert unlocked.code == 0, unlocked.out + unlocked.err
        again = reconcile("apply", "--auto-approve")
    assert_converged(again, reconcile)
    assert_unlocked(aws)


# --- (d) two applies at once ----------------------------------------------------------------------

def checkout(tmp_path, name: str, *, memory: int):
    """A second working copy of the stack's canvas.yaml and build context, with its own memory."""
    here = tmp_path / name
    here.mkdir()
    for relative in ["canvas.yaml", *BUILD_CONTEXT]:
        (here / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / relative, here / relative)
    text = (here / "canvas.yaml").read_text()
    (here / "canvas.yaml").write_text(re.sub(r"(?m)^(\s+memory:) \d+$", rf"\1 {memory}", text, count=1))
    return here


def assert_race_outcome(runs: list[Run]) -> None:
    """Exactly one applies while the other is refused naming the lock's holder, or both converge
    (one after the other); never a create refused as AlreadyExists, never a traceback."""
    for run in runs:
        text = run.out + run.err
        assert "FAIL" not in text and "Traceback" not in text, text  # no create refused as AlreadyExists
    codes = sorted(run.code for run in runs)
    assert codes in ([0, 0], [0, 1]), [r.out + r.err for r in runs]
    for run in runs:
        if run.code == 1:
            locked = rf"the stack {STACK} is locked: apply by arn:aws:\S+ on .+, held for \d+s"
            assert re.search(locked, run.out + run.err), run.out + run.err


def test_two_applies_from_nothing_one_applies_and_the_other_is_refused_or_follows(from_nothing, reconcile, aws,
                                                                                  start_reconcile):
    # Both plan the stack from nothing before either has made the bucket: the bucket's create
    # is held a moment, so that both are in the race for it and then for the lock.
    rule = from_nothing.add("latency", service="s3", operation="CreateBucket", times=2, delay=1.0)
    procs = [start_reconcile("apply", "--auto-approve") for _ in range(2)]
    runs = [finish(proc) for proc in procs]

    assert rule.fired == 2, from_nothing.calls
    assert_race_outcome(runs)
    plan = reconcile("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert_unlocked(aws)


def test_two_applies_of_different_changes_leave_a_record_that_agrees_with_aws(from_nothing, reconcile, start_reconcile,
                                                                            aws, tmp_path):
    first = reconcile("apply", "--auto-approve")
    assert first.code == 0, first.out + first.err
    big, small = checkout(tmp_path, "big", memory=3008), checkout(tmp_path, "small", memory=1024)
    # Without a lock these delays make the interleaving that contradicts the record: big's
    # update, small's update, small's record, big's record (record 3008, live 1024). With the
    # lock, whichever takes it first applies and records before the other may start.
    from_nothing.add("latency", service="lambda", operation="UpdateFunctionConfiguration",
                     contains='"MemorySize": 1024', delay=0.5)
    from_nothing.add("latency", service="s3", operation="PutObject", contains='"memory": 3008', delay=2.0)
    procs = [start_reconcile("apply", "--auto-approve", cwd=big),
             start_reconcile("apply", "--auto-approve", cwd=small)]
    runs = [finish(proc) for proc in procs]

    assert_race_outcome(runs)
    live = aws.lambda_.get_function_configuration(FunctionName=FUNCTION)["MemorySize"]
    assert live in [memory for memory, run in zip((3008, 1024), runs, strict=True) if run.code == 0]
    record = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=RECORD_KEY)["Body"].read())
    assert record["desired"][f"lambda_function.{FUNCTION}"]["memory"] == live
    for here in (big, small):
        drift = finish(start_reconcile("drift", cwd=here), timeout=60)
        assert drift.code == 0, drift.out + drift.err
        assert "Traceback" not in drift.err
