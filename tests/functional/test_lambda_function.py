"""lambda_function against moto: the whole stack from nothing, each attribute drifted by hand
and repaired, the role-not-yet-assumable retry on a fake clock, secrets kept off the screen,
and the plan's dependency order.

moto 5.x ignores EphemeralStorage in UpdateFunctionConfiguration and Architectures in
UpdateFunctionCode, so those two updates are checked by the call the engine sends (here and
in tests/unit/test_lambda_stubbed.py), never by a moto round trip.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
from lambda_harness import (
    FUNCTION,
    ROLE_NOT_ASSUMABLE,
    STACK_TAGS,
    TARGET,
    FakeTime,
    Flaky,
    LambdaConsole,
    ParamsRecorder,
    engine_clients_for,
    make_stack,
)
from moto_harness import DATABASE_KEY, STACK

import reconciler
from reconciler.aws import Clients
from reconciler.errors import PlanError
from reconciler.kinds import lambda_permission
from reconciler.plan import SENSITIVE, Action, AttributeChange
from reconciler.render import render_json, render_text

PLAN_SCHEMA = Path(reconciler.__file__).parent / "schemas" / "plan.schema.json"
READS_OF_THE_LAMBDA_SIDE = {"GetCallerIdentity", "DescribeImages", "GetFunction", "GetFunctionUrlConfig", "GetPolicy"}


def desired_environment(bucket: str) -> dict[str, str]:
    return {"NODE_ENV": "production", "PORT": "8080", "S3_BUCKET_NAME": bucket, "S3_DB_KEY": DATABASE_KEY}


def ticking(seconds: float) -> Callable[[], float]:
    return itertools.count(0, seconds).__next__


# ---- the whole stack ------------------------------------------------------------------------

def test_stack_from_nothing_stops_at_the_missing_image_and_creates_no_function(stack, lambda_console):
    a = stack.address

    applied = stack.apply(clock=ticking(0.1))

    assert applied.lines[:3] == [f"[1/8] create {a['s3_bucket']} … SUCCESS (0.1s)",
                                 f"[2/8] create {a['ecr_repository']} … SUCCESS (0.1s)",
                                 f"[3/8] create {a['iam_role']} … SUCCESS (0.1s)"]
    assert applied.lines[3].startswith(
        f"[4/8] create {a['container_image']} … FAIL: image {stack.names.repository}:v1.2 not found in ECR — "
        "build and push it")
    assert len(applied.lines) == 4
    assert applied.result.failed.address == a["container_image"]
    assert [c.address for c in applied.result.remaining] == [
        a["lambda_function"], a["lambda_function_url"],
        a[lambda_permission.URL_ACCESS], a[lambda_permission.URL_INVOKE]]
    assert "CreateFunction" not in stack.calls.operations
    assert lambda_console.lam.list_functions()["Functions"] == []


def test_stack_from_nothing_then_a_second_apply_makes_no_mutating_call(stack, lambda_console):
    a = stack.address
    stack.apply()  # stops at the image, as above
    digest = lambda_console.push(b"image one")

    applied = stack.apply(clock=ticking(0.1))

    assert applied.lines == [f"[{i}/4] create {address} … SUCCESS (0.1s)" for i, address in enumerate(
        [a["lambda_function"], a["lambda_function_url"], a[lambda_permission.URL_ACCESS],
         a[lambda_permission.URL_INVOKE]], 1)]
    config = lambda_console.lam.get_function(FunctionName=FUNCTION)
    assert config["Code"]["ImageUri"] == f"{lambda_console.repository_uri()}@{digest}"
    c = config["Configuration"]
    assert (c["PackageType"], c["MemorySize"], c["Timeout"], c["EphemeralStorage"]["Size"]) == (
        "Image", 2048, 900, 1024)
    assert c["Role"] == TARGET.role_arn(stack.names.role)
    assert c["Environment"]["Variables"] == desired_environment(stack.names.bucket)
    assert config["Tags"] == STACK_TAGS
    assert lambda_console.url_config()["AuthType"] == "NONE"
    assert set(lambda_console.statements()) == {lambda_permission.URL_ACCESS, lambda_permission.URL_INVOKE}

    stack.calls.clear()
    plan = stack.plan()
    again = stack.apply(plan)

    assert [c.action for c in plan.changes] == [Action.NOOP] * 8
    assert again.lines == [] and again.result.done == []
    assert READS_OF_THE_LAMBDA_SIDE <= set(stack.calls.operations)
    assert stack.calls.mutating == []


def test_plan_lists_the_stack_in_dependency_order(stack):
    plan = json.loads(render_json(stack.plan()))

    jsonschema.validate(plan, json.loads(PLAN_SCHEMA.read_text()))
    assert [(c["type"], c["action"]) for c in plan["changes"]] == [
        # The role before the image (kinds/__init__.py): it has longer to propagate before the function needs it.
        ("s3_bucket", "create"), ("ecr_repository", "create"), ("iam_role", "create"), ("container_image", "create"),
        ("lambda_function", "create"), ("lambda_function_url", "create"),
        ("lambda_permission", "create"), ("lambda_permission", "create")]
    assert [c["name"] for c in plan["changes"][-2:]] == [lambda_permission.URL_ACCESS, lambda_permission.URL_INVOKE]


# ---- drift of each attribute ------------------------------------------------------------------

def live(console: LambdaConsole, path: str) -> Any:
    """The attribute at `path` as the colleague's console sees it, read independently of the engine."""
    head, _, key = path.partition(".")
    if key:
        return {"environment": console.environment, "tags": console.function_tags}[head]().get(key)
    if head == "reserved_concurrency":
        return console.lam.get_function_concurrency(FunctionName=FUNCTION).get("ReservedConcurrentExecutions")
    return console.configuration()[{"memory": "MemorySize", "timeout": "Timeout", "role": "Role"}[head]]


def _set_variables(change: Callable[[dict], None]) -> Callable[[LambdaConsole], None]:
    def by_hand(console: LambdaConsole) -> None:
        variables = console.environment()
        change(variables)
        console.set_environment(variables)
    return by_hand


def _reserve(console: LambdaConsole) -> None:
    console.lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=2)


@dataclass(frozen=True)
class Drift:
    path: str
    by_hand: Callable[[LambdaConsole], Any]
    after: Any  # the value canvas.yaml wants back; a callable gets the test's Names
    edit: Callable[[dict], None] | None = None  # canvas.yaml as deployed, when not the default


def _with_concurrency(data: dict) -> None:
    data["function"]["reserved_concurrency"] = 5


DRIFTS = {
    "memory": Drift("memory", lambda c: c.lam.update_function_configuration(FunctionName=FUNCTION, MemorySize=512),
                    2048),
    "timeout": Drift("timeout", lambda c: c.lam.update_function_configuration(FunctionName=FUNCTION, Timeout=30),
                     900),
    "env-value-changed": Drift("environment.NODE_ENV", _set_variables(lambda v: v.update(NODE_ENV="development")),
                               "production"),
    "env-added-by-hand": Drift("environment.DEBUG", _set_variables(lambda v: v.update(DEBUG="1")), None),
    "env-removed": Drift("environment.PORT", _set_variables(lambda v: v.pop("PORT")), "8080"),
    "role": Drift("role", lambda c: c.lam.update_function_configuration(FunctionName=FUNCTION,
                                                                        Role=c.make_other_role()),
                  lambda names: TARGET.role_arn(names.role)),
    "reserved-concurrency-changed": Drift("reserved_concurrency", _reserve, 5, edit=_with_concurrency),
    "reserved-concurrency-removed": Drift(
        "reserved_concurrency", lambda c: c.lam.delete_function_concurrency(FunctionName=FUNCTION), 5,
        edit=_with_concurrency),
    "stack-tag-removed": Drift("tags.canvas:stack",
                               lambda c: c.lam.untag_resource(Resource=c.function_arn(), TagKeys=["canvas:stack"]),
                               STACK),
    "user-tag-changed": Drift("tags.team",
                              lambda c: c.lam.tag_resource(Resource=c.function_arn(), Tags={"team": "ops"}), "canvas"),
}


@pytest.mark.parametrize("drift", DRIFTS.values(), ids=DRIFTS.keys())
def test_function_attribute_changed_by_hand_is_detected_and_repaired(deploy, lambda_console, drift):
    deployed = deploy(drift.edit)
    after = drift.after(deployed.names) if callable(drift.after) else drift.after
    drift.by_hand(lambda_console)
    before = live(lambda_console, drift.path)
    assert before != after, "the change by hand took effect"

    plan = deployed.plan()

    [change] = plan.pending
    assert (change.address, change.action) == (deployed.address["lambda_function"], Action.UPDATE)
    assert change.attributes == (AttributeChange(drift.path, before, after),)
    applied = deployed.apply(plan)
    assert applied.result.ok, applied.lines
    assert live(lambda_console, drift.path) == after
    assert lambda_console.environment() == desired_environment(deployed.names.bucket)
    assert not deployed.plan().has_changes


def test_a_function_retagged_to_another_stack_is_refused_not_taken_over(deployed, lambda_console):
    lambda_console.lam.tag_resource(Resource=lambda_console.function_arn(), Tags={"canvas:stack": "someone-else"})

    with pytest.raises(PlanError) as refused:
        deployed.plan()

    assert f"lambda_function.{FUNCTION} belongs to stack 'someone-else'" in str(refused.value)


def test_reserved_concurrency_left_out_of_canvas_yaml_is_unmanaged(deployed, lambda_console):
    _reserve(lambda_console)

    assert not deployed.plan().has_changes


def test_architectures_drift_is_detected_and_sent_with_the_code_by_digest(deployed, lambda_console):
    """moto keeps x86_64 whatever UpdateFunctionCode says, so the repair is checked by the call sent."""
    def arm64(data: dict) -> None:
        data["function"]["architectures"] = ["arm64"]
        data["image"]["build"]["platform"] = "linux/arm64"
    deployed.write(arm64)

    plan = deployed.plan()

    [change] = plan.pending
    assert change.attributes == (AttributeChange("architectures", ["x86_64"], ["arm64"]),)
    assert deployed.apply(plan).result.ok
    assert deployed.calls.params("UpdateFunctionCode") == [{
        "FunctionName": FUNCTION, "ImageUri": f"{lambda_console.repository_uri()}@{deployed.first_digest}",
        "Architectures": ["arm64"]}]
    assert deployed.calls.params("UpdateFunctionConfiguration") == []


# ---- secrets ----------------------------------------------------------------------------------

def test_secret_looking_variables_are_masked_in_both_renderings(deploy, lambda_console):
    def with_secrets(data: dict) -> None:
        data["function"]["environment"].update(DB_PASSWORD="hunter2-old", API_KEY="key-old-5150")
    deployed = deploy(with_secrets)
    by_hand = _set_variables(lambda v: v.update(DB_PASSWORD="hunter2-new", API_KEY="key-new-8086",
                                                S3_DB_KEY="database/elsewhere.db", SESSION_TOKEN="tok-by-hand-31337"))
    by_hand(lambda_console)

    plan = deployed.plan()

    [change] = plan.pending
    sensitivity = {a.path: a.sensitive for a in change.attributes}
    assert sensitivity == {"environment.API_KEY": True, "environment.DB_PASSWORD": True,
                           "environment.S3_DB_KEY": False, "environment.SESSION_TOKEN": True}
    text, as_json = render_text(plan), render_json(plan)
    for secret in ("hunter2-old", "hunter2-new", "key-old-5150", "key-new-8086", "tok-by-hand-31337"):
        assert secret not in text and secret not in as_json
    assert f"environment.DB_PASSWORD: {SENSITIVE} → {SENSITIVE}" in text
    assert f"environment.SESSION_TOKEN: {SENSITIVE}" in text
    assert f"environment.S3_DB_KEY: database/elsewhere.db → {DATABASE_KEY}" in text
    attributes = {a["path"]: (a["before"], a["after"])
                  for c in json.loads(as_json)["changes"] for a in c["attributes"]}
    assert attributes["environment.API_KEY"] == (SENSITIVE, SENSITIVE)
    assert attributes["environment.SESSION_TOKEN"] == (SENSITIVE, None)
    assert attributes["environment.S3_DB_KEY"] == ("database/elsewhere.db", DATABASE_KEY)
    assert deployed.apply(plan).result.ok
    assert lambda_console.environment()["DB_PASSWORD"] == "hunter2-old"


# ---- retries on a fake clock -----------------------------------------------------------------

@dataclass
class TimedEngine:
    """Clients that sleep on a fake clock only, and the faults injected into them."""

    clients: Clients
    calls: ParamsRecorder
    time: FakeTime
    faults: list[tuple[str, str]]

    def flaky(self, operation: str, *, times: int, code: str, message: str) -> Flaky:
        fault, event = Flaky(times=times, code=code, message=message), f"before-call.lambda.{operation}"
        unique_id = f"flaky-{operation}-{len(self.faults)}"
        self.clients.awslambda.meta.events.register(event, fault, unique_id=unique_id)
        self.faults.append((event, unique_id))
        return fault

    def reset(self) -> None:
        for event, unique_id in self.faults:
            self.clients.awslambda.meta.events.unregister(event, unique_id=unique_id)
        self.faults.clear()
        self.time.now, self.time.sleeps = 0.0, []


@pytest.fixture(scope="module")
def timed_engine() -> TimedEngine:
    """Built once for the module: a boto3 session costs more than a test."""
    fake_time = FakeTime()
    return TimedEngine(*engine_clients_for(sleep=fake_time.sleep, clock=fake_time.clock), fake_time, [])


@pytest.fixture
def timed(timed_engine) -> TimedEngine:
    timed_engine.reset()
    yield timed_engine
    timed_engine.reset()


@pytest.fixture
def timed_stack(tmp_path, names, lambda_console, timed):
    """A stack on the fake-clock clients, its image pushed already."""
    lambda_console.make_repository(STACK_TAGS)
    lambda_console.push(b"image one")
    return make_stack(tmp_path / "canvas.yaml", names, timed.clients, timed.calls)


def function_step(lines: list[str]) -> list[str]:
    """The lines of the lambda_function step: its header line and whatever is indented under it."""
    start = next(i for i, line in enumerate(lines) if f"lambda_function.{FUNCTION} …" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return lines[start:end]


WAITING_FOR_ROLE = "      waiting for IAM to let Lambda assume the new role: InvalidParameterValueException"


def test_role_not_yet_assumable_is_retried_and_the_step_says_so(timed_stack, lambda_console, timed):
    fault = timed.flaky("CreateFunction", times=3, code="InvalidParameterValueException", message=ROLE_NOT_ASSUMABLE)

    applied = timed_stack.apply(clock=timed.time.clock)

    assert applied.result.ok, applied.lines
    a = timed_stack.address
    assert function_step(applied.lines) == [
        f"[3/6] create {a['lambda_function']} … ",
        f"{WAITING_FOR_ROLE}; retry 1 in 1s",
        f"{WAITING_FOR_ROLE}; retry 2 in 2s",
        f"{WAITING_FOR_ROLE}; retry 3 in 4s",
        "      SUCCESS (7.0s)",
    ]
    assert applied.lines[0] == f"[1/6] create {a['s3_bucket']} … SUCCESS (0.0s)"
    assert applied.lines[1] == f"[2/6] create {a['iam_role']} … SUCCESS (0.0s)", "the role is seconds old"
    assert fault.calls == 4 and timed.time.sleeps == [1, 2, 4]
    assert lambda_console.configuration()["State"] == "Active"
    assert not timed_stack.plan().has_changes


@pytest.mark.parametrize("code, message", [
    ("InvalidParameterValueException",
     "The image manifest, config or layer media type for the source image is not supported."),
    ("AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                              "lambda:CreateFunction"),
], ids=["same-code-other-message", "access-denied"])
def test_any_other_create_error_fails_at_once(timed_stack, lambda_console, timed, code, message):
    fault = timed.flaky("CreateFunction", times=1000, code=code, message=message)

    applied = timed_stack.apply(clock=timed.time.clock)

    assert function_step(applied.lines) == [
        f"[3/6] create {timed_stack.address['lambda_function']} … FAIL: {code}: {message}"]
    assert fault.calls == 1 and timed.time.sleeps == []
    assert applied.result.failed.address == timed_stack.address["lambda_function"]


def test_role_never_assumable_fails_after_about_two_minutes(timed_stack, lambda_console, timed):
    fault = timed.flaky("CreateFunction", times=1000, code="InvalidParameterValueException",
                        message=ROLE_NOT_ASSUMABLE)

    applied = timed_stack.apply(clock=timed.time.clock)

    step = function_step(applied.lines)
    assert step[-1] == f"      FAIL: InvalidParameterValueException: {ROLE_NOT_ASSUMABLE}"
    assert all(line.startswith(WAITING_FOR_ROLE) for line in step[1:-1])
    assert len(step[1:-1]) == len(timed.time.sleeps) == fault.calls - 1
    assert 100 <= sum(timed.time.sleeps) <= 120, timed.time.sleeps
    assert max(timed.time.sleeps) <= 10
    assert not applied.result.ok
    assert [c.type for c in applied.result.remaining] == ["lambda_function_url", "lambda_permission",
                                                          "lambda_permission"]
    assert lambda_console.lam.list_functions()["Functions"] == []


def test_update_in_progress_is_retried(timed_stack, lambda_console, timed):
    timed_stack.converge()
    lambda_console.lam.update_function_configuration(FunctionName=FUNCTION, MemorySize=512)
    in_progress = (f"The operation cannot be performed at this time. An update is in progress for resource: "
                   f"{lambda_console.function_arn()}")
    fault = timed.flaky("UpdateFunctionConfiguration", times=2, code="ResourceConflictException",
                        message=in_progress)

    applied = timed_stack.apply(clock=timed.time.clock)

    waiting = "      waiting for the previous update to finish: ResourceConflictException"
    assert applied.lines == [
        f"[1/1] update {timed_stack.address['lambda_function']} … ",
        f"{waiting}; retry 1 in 1s",
        f"{waiting}; retry 2 in 2s",
        "      SUCCESS (3.0s)",
    ]
    assert fault.calls == 3
    assert lambda_console.configuration()["MemorySize"] == 2048
