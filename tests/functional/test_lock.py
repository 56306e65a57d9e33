"""The stack's lock (lock.py) and the apply that runs under it (safe_apply.py), against moto."""
import datetime
import itertools
import json
import threading

import pytest
from moto_harness import STACK, Echo

from reconciler import lock
from reconciler.kinds import FOUNDATION
from reconciler.plan import Action
from reconciler.planner import build_plan
from reconciler.safe_apply import StalePlan, locked_apply, plan_sha256


def lock_document(console, names):
    return json.loads(console.s3.get_object(Bucket=names.bucket, Key=lock.lock_key(STACK))["Body"].read())


def lock_keys(console, names):
    answer = console.s3.list_object_versions(Bucket=names.bucket, Prefix=lock.lock_key(STACK))
    return answer.get("Versions", []) + answer.get("DeleteMarkers", [])


def run_locked_apply(canvas, plan=None, *, auto_approved=True, timeout=0.0):
    spec, echo = canvas.spec(), Echo()
    approved = plan or canvas.plan()
    applied, result = locked_apply(approved, canvas.clients, spec=spec, replan=canvas.plan, echo=echo,
                                   render=lambda p: "(plan)", auto_approved=auto_approved, lock_timeout=timeout)
    return applied, result, echo.lines


def test_the_lock_holds_who_where_when_what_and_the_plan_and_is_gone_afterwards(canvas, console, names):
    canvas.converge()
    with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply", plan_sha256="abc") as mine:
        held = lock_document(console, names)
        assert held["id"] == mine["id"] and held["operation"] == "apply" and held["plan_sha256"] == "abc"
        assert held["who"].startswith("arn:aws:") and " pid " in held["where"]
        datetime.datetime.fromisoformat(held["when"].replace("Z", "+00:00"))
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is None
    assert lock_keys(console, names) == [], "its own version is deleted: no lock history piles up"


@pytest.mark.parametrize("failure", [RuntimeError("a failed step"), KeyboardInterrupt()])
def test_the_lock_is_released_on_failure_and_on_ctrl_c(canvas, names, failure):
    canvas.converge()
    with pytest.raises(type(failure)):
        with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply"):
            raise failure
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is None


def test_a_second_holder_is_refused_at_once_naming_the_holder_and_its_age(canvas, names):
    canvas.converge()
    then = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply", now=lambda: then) as first:
        with pytest.raises(lock.LockHeld) as refused:
            with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="destroy",
                           now=lambda: then + datetime.timedelta(minutes=7)):
                pytest.fail("a second holder got the lock")
    message = str(refused.value)
    assert f"the stack {STACK} is locked: apply by arn:aws:" in message
    assert "held for 7m" in message and first["id"] in message and "--lock-timeout" in message


def test_with_a_timeout_the_second_waits_and_takes_the_lock_once_released(canvas, names):
    canvas.converge()
    first = lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply")
    first.__enter__()
    sleeps, notes = [], []

    def sleep(seconds):  # the first holder finishes while the second waits
        sleeps.append(seconds)
        if len(sleeps) == 2:
            first.__exit__(None, None, None)

    ticks = itertools.count(0, 2.0).__next__
    with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply", timeout=300,
                   notify=notes.append, clock=ticks, sleep=sleep) as second:
        assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK)["id"] == second["id"]
    assert len(sleeps) == 2 and notes[0].startswith("waiting for the lock: apply by ")


def test_a_timeout_that_runs_out_is_refused(canvas, names):
    canvas.converge()
    with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply"):
        ticks = itertools.count(0, 10.0).__next__
        with pytest.raises(lock.LockHeld, match="still held after waiting"):
            with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply", timeout=30,
                           clock=ticks, sleep=lambda s: None):
                pass


def test_force_unlock_removes_only_the_lock_it_names(canvas, names):
    canvas.converge()
    stale = lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply")
    holder = stale.__enter__()  # and never leaves: as after kill -9

    with pytest.raises(lock.ReconcileError, match="nothing was removed"):
        lock.force_unlock(canvas.clients, bucket=names.bucket, stack=STACK, lock_id="not-the-id")
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK)["id"] == holder["id"]

    removed = lock.force_unlock(canvas.clients, bucket=names.bucket, stack=STACK, lock_id=holder["id"])
    assert removed["id"] == holder["id"]
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is None
    with pytest.raises(lock.ReconcileError, match="is not locked"):
        lock.force_unlock(canvas.clients, bucket=names.bucket, stack=STACK, lock_id=holder["id"])


def test_parse_timeout_reads_durations_and_refuses_others():
    assert [lock.parse_timeout(t) for t in ("0s", "30s", "5m", "1h", "12")] == [0, 30, 300, 3600, 12]
    for bad in ("soon", "-1m", "5x"):
        with pytest.raises(lock.ReconcileError, match="--lock-timeout"):
            lock.parse_timeout(bad)


def test_an_apply_from_nothing_makes_the_bucket_first_then_applies_and_records_under_the_lock(canvas, console, names):
    applied, result, lines = run_locked_apply(canvas)

    assert result.ok, lines
    assert [line.split(" … ")[0] for line in lines] == [
        f"[1/3] create s3_bucket.{names.bucket}", f"[2/3] create ecr_repository.{names.repository}",
        f"[3/3] create iam_role.{names.role}"]
    assert result.recorded and len(result.done) == 3
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is None
    assert not canvas.plan().has_changes


def test_an_apply_while_another_holds_the_lock_writes_nothing(canvas, console, names):
    canvas.converge()
    canvas.write(lambda data: data["tags"].update({"team": "other"}))
    plan = canvas.plan()
    with lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply"):
        canvas.calls.clear()
        with pytest.raises(lock.LockHeld):
            run_locked_apply(canvas, plan)
        assert [op for op in canvas.calls.mutating if op != "PutObject"] == []
    assert console.bucket_tags()["team"] == "canvas"


def test_an_approved_plan_that_went_stale_before_the_lock_is_refused_and_nothing_is_written(canvas, console, names):
    canvas.converge()
    canvas.write(lambda data: data["tags"].update({"team": "mine"}))
    approved = canvas.plan()
    # Meanwhile another apply (or a colleague) changes the same tag.
    console.s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": [
        {"Key": k, "Value": v} for k, v in {**console.bucket_tags(), "team": "theirs"}.items()]})
    canvas.calls.clear()

    with pytest.raises(StalePlan, match=rf"stale plan: .*\n  s3_bucket.{names.bucket}: its live values"):
        run_locked_apply(canvas, approved, auto_approved=False)

    assert console.bucket_tags()["team"] == "theirs"
    assert set(canvas.calls.mutating) <= {"PutObject", "DeleteObject"}  # the lock's own put and delete
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is None


def test_auto_approved_applies_the_plan_made_under_the_lock_and_records_what_it_made(canvas, console, names):
    canvas.converge()
    canvas.write(lambda data: data["tags"].update({"team": "mine"}))
    approved = canvas.plan()
    console.s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": [
        {"Key": k, "Value": v} for k, v in {**console.bucket_tags(), "team": "theirs"}.items()]})

    applied, result, lines = run_locked_apply(canvas, approved)

    assert result.ok, lines
    assert any("The stack changed since the plan above" in line for line in lines)
    assert applied is not approved and plan_sha256(applied) != plan_sha256(approved)
    assert console.bucket_tags()["team"] == "mine"


def test_two_first_applies_racing_both_end_converged_and_neither_fails_on_already_exists(canvas, names):
    outcomes, barrier = [], threading.Barrier(2)

    def one_apply():
        spec = canvas.spec()
        plan = build_plan(spec, canvas.clients, region=spec.region, kinds=FOUNDATION)
        barrier.wait()  # both planned from nothing: both will try to create everything
        try:
            outcomes.append(run_locked_apply(canvas, plan, timeout=60)[1])
        except Exception as exc:  # noqa: BLE001 - the test reports whatever either raised
            outcomes.append(exc)

    threads = [threading.Thread(target=one_apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == 2 and all(getattr(o, "ok", False) for o in outcomes), outcomes
    assert not canvas.plan().has_changes
    assert [c.action for c in canvas.plan().changes] == [Action.NOOP] * 3
