"""The Lambda kinds' calls checked with botocore's Stubber, where moto cannot show them: moto
5.x ignores EphemeralStorage in UpdateFunctionConfiguration and Architectures in
UpdateFunctionCode, and returns get_policy's URL conditions as flat fields where AWS returns
a Condition block.

Stubber answers in the order the calls are expected and fails on any other call, so each
test also pins the order: wait, code, wait, configuration, wait.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from reconciler.aws import Clients, retry
from reconciler.errors import ReconcileError
from reconciler.kinds import lambda_function, lambda_permission
from reconciler.plan import Action
from reconciler.planner import resource_change
from reconciler.spec import load_spec
from reconciler.target import Target

REGION, ACCOUNT = "us-west-2", "123456789012"
TARGET = Target(region=REGION, account=ACCOUNT)
FUNCTION, REPOSITORY, TAG = "code-canvas-astro-lambda", "python-repl-container-lambda", "v1.2"
REPOSITORY_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
DIGEST = "sha256:" + "ab" * 32
CANVAS = f"""\
version: 1
stack: code-canvas-astro
region: {REGION}
bucket: {{name: code-canvas-astro-db, database_key: database/taskManagement.db}}
repository: {{name: {REPOSITORY}}}
image: {{tag: {TAG}}}
role: {{name: code-canvas-astro-lambda-role}}
function:
  name: {FUNCTION}
  memory: 2048
  timeout: 900
  ephemeral_storage: 1024
  environment: {{NODE_ENV: production}}
url: {{auth_type: NONE}}
"""
SETTLED = {"Configuration": {"FunctionName": FUNCTION, "State": "Active", "LastUpdateStatus": "Successful"}}
BY_NAME = {"FunctionName": FUNCTION}


class Notes(list):
    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture(scope="module")
def clients():
    """No call leaves the process: every test stubs the clients it uses."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        return Clients(region=REGION).warm(("lambda", "ecr"))


@pytest.fixture
def fake_time(clients, monkeypatch):
    """The clients' sleep and clock, made fake for one test: sleeping only moves the clock."""
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(clients, "sleep", sleep)
    monkeypatch.setattr(clients, "clock", lambda: now[0])
    monkeypatch.setattr(clients, "notify", Notes())
    return slept


@pytest.fixture
def lam(clients):
    with Stubber(clients.awslambda) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def ecr(clients):
    with Stubber(clients.ecr) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def want(tmp_path) -> dict:
    path = tmp_path / "canvas.yaml"
    path.write_text(CANVAS)
    return lambda_function.desired(load_spec(path), TARGET)


def expect_tag_lookup(ecr) -> None:
    ecr.add_response("describe_images", {"imageDetails": [{"imageDigest": DIGEST, "imageTags": [TAG]}]},
                     {"repositoryName": REPOSITORY, "imageIds": [{"imageTag": TAG}]})


def expect_settled(lam) -> None:
    lam.add_response("get_function", SETTLED, BY_NAME)


def test_update_of_ephemeral_storage_sends_its_size(clients, lam, want, fake_time):
    expect_settled(lam)
    lam.add_response("update_function_configuration", {}, {**BY_NAME, "EphemeralStorage": {"Size": 4096}})
    expect_settled(lam)

    lambda_function.update(clients, {**want, "ephemeral_storage": 4096}, {"name": FUNCTION}, ["ephemeral_storage"])


def test_create_sends_ephemeral_storage_and_the_image_by_digest(clients, lam, ecr, want, fake_time):
    expect_tag_lookup(ecr)
    lam.add_response("create_function", {}, {
        "FunctionName": FUNCTION, "PackageType": "Image", "Code": {"ImageUri": f"{REPOSITORY_URI}@{DIGEST}"},
        "Role": f"arn:aws:iam::{ACCOUNT}:role/code-canvas-astro-lambda-role",
        "Environment": {"Variables": {"NODE_ENV": "production", "S3_BUCKET_NAME": "code-canvas-astro-db",
                                      "S3_DB_KEY": "database/taskManagement.db"}},
        "Tags": {"canvas:stack": "code-canvas-astro"},
        "MemorySize": 2048, "Timeout": 900, "EphemeralStorage": {"Size": 1024},
    })
    expect_settled(lam)  # function_active_v2

    lambda_function.create(clients, want)


def test_code_and_configuration_are_separate_calls_with_a_wait_between(clients, lam, ecr, want, fake_time):
    expect_tag_lookup(ecr)
    expect_settled(lam)
    lam.add_response("update_function_code", {},
                     {**BY_NAME, "ImageUri": f"{REPOSITORY_URI}@{DIGEST}", "Architectures": ["arm64"]})
    expect_settled(lam)
    lam.add_response("update_function_configuration", {}, {**BY_NAME, "MemorySize": 2048})
    expect_settled(lam)

    lambda_function.update(clients, {**want, "architectures": ["arm64"]}, {"name": FUNCTION},
                           ["architectures", "memory"])


def test_update_in_progress_on_the_code_is_retried_with_a_note(clients, lam, ecr, want, fake_time):
    in_progress = ("The operation cannot be performed at this time. "
                   f"An update is in progress for resource: {FUNCTION_ARN}")
    expect_tag_lookup(ecr)
    expect_settled(lam)
    code = {**BY_NAME, "ImageUri": f"{REPOSITORY_URI}@{DIGEST}"}
    lam.add_client_error("update_function_code", "ResourceConflictException", in_progress, 409, expected_params=code)
    lam.add_response("update_function_code", {}, code)
    expect_settled(lam)

    lambda_function.update(clients, want, {"name": FUNCTION}, ["image_digest"])

    assert fake_time == [1]
    assert clients.notify == ["waiting for the previous update to finish: ResourceConflictException; retry 1 in 1s"]


def test_update_in_progress_for_longer_than_a_minute_fails(clients, lam, want, fake_time):
    expect_settled(lam)
    for _ in range(9):  # 1+2+4+8+10+10+10+10 s of waiting, then the budget of 60 s is spent
        lam.add_client_error("update_function_configuration", "ResourceConflictException", "in progress", 409)

    with pytest.raises(ClientError) as failure:
        lambda_function.update(clients, want, {"name": FUNCTION}, ["memory"])

    assert failure.value.response["Error"]["Code"] == "ResourceConflictException"
    assert fake_time == [1, 2, 4, 8, 10, 10, 10, 10] and sum(fake_time) <= 60


# ---- get_policy as AWS answers it ------------------------------------------------------------

AWS_POLICY = {
    "Version": "2012-10-17", "Id": "default",
    "Statement": [
        {"Sid": lambda_permission.URL_ACCESS, "Effect": "Allow", "Principal": "*",
         "Action": "lambda:InvokeFunctionUrl", "Resource": FUNCTION_ARN,
         "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}},
        {"Sid": lambda_permission.URL_INVOKE, "Effect": "Allow", "Principal": "*",
         "Action": "lambda:InvokeFunction", "Resource": FUNCTION_ARN,
         "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}},
    ],
}


@pytest.mark.parametrize("sid", [lambda_permission.URL_ACCESS, lambda_permission.URL_INVOKE])
def test_aws_condition_block_reads_as_no_change(clients, lam, tmp_path, sid):
    path = tmp_path / "canvas.yaml"
    path.write_text(CANVAS)
    [wanted] = [w for w in lambda_permission.desired(load_spec(path), TARGET) if w["name"] == sid]
    lam.add_response("get_policy", {"Policy": json.dumps(AWS_POLICY), "RevisionId": "1"}, BY_NAME)

    have = lambda_permission.read(clients, wanted)

    change = resource_change(lambda_permission, wanted, have)
    assert (change.action, change.attributes) == (Action.NOOP, ())


def test_aws_condition_block_with_another_value_is_a_replace(clients, lam, tmp_path):
    path = tmp_path / "canvas.yaml"
    path.write_text(CANVAS)
    [wanted] = [w for w in lambda_permission.desired(load_spec(path), TARGET)
                if w["name"] == lambda_permission.URL_ACCESS]
    policy = json.loads(json.dumps(AWS_POLICY))
    policy["Statement"][0]["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"] = "AWS_IAM"
    lam.add_response("get_policy", {"Policy": json.dumps(policy), "RevisionId": "1"}, BY_NAME)

    change = resource_change(lambda_permission, wanted, lambda_permission.read(clients, wanted))

    assert change.action is Action.REPLACE
    assert [(a.path, a.before, a.after) for a in change.attributes] == [("function_url_auth_type", "AWS_IAM", "NONE")]


# ---- pure helpers ----------------------------------------------------------------------------

@pytest.mark.parametrize("uri, expected", [
    (f"{REPOSITORY_URI}@{DIGEST}", (REPOSITORY_URI, DIGEST)),  # AWS's ResolvedImageUri
    (f"{REPOSITORY_URI}@sha256@{DIGEST}", (REPOSITORY_URI, DIGEST)),  # moto's, after an update by digest
    (f"{REPOSITORY_URI}:{TAG}", (REPOSITORY_URI, None)),
    ("registry.example:5000/team/repl", ("registry.example:5000/team/repl", None)),
    ("", (None, None)),
])
def test_split_image_uri(uri, expected):
    assert lambda_function.split_image_uri(uri) == expected


@pytest.mark.parametrize("key, secret", [
    ("DB_PASSWORD", True), ("API_KEY", True), ("STRIPE_SECRET", True), ("GITHUB_TOKEN", True), ("SIGNING_KEY", True),
    ("S3_DB_KEY", False), ("S3_BUCKET_NAME", False), ("NODE_ENV", False), ("PORT", False),
])
def test_which_variables_look_secret(key, secret):
    assert lambda_function.looks_secret(key, "value") is secret


def test_retry_stops_at_once_on_an_error_it_was_not_told_to_wait_for(clients, fake_time):
    attempts = []

    def call():
        attempts.append(1)
        raise ClientError({"Error": {"Code": "InvalidParameterValueException", "Message": "Memory too low"}},
                          "CreateFunction")

    with pytest.raises(ClientError):
        retry(call, clients=clients, retryable=lambda exc: False, waiting_for="never")

    assert (len(attempts), fake_time, clients.notify) == (1, [], [])


def _state(state: str, update: str = "Successful", **reason) -> dict:
    return {"Configuration": {"FunctionName": FUNCTION, "State": state, "LastUpdateStatus": update, **reason}}


def test_a_pending_function_is_waited_for_on_the_injected_clock_with_a_note(clients, lam, fake_time):
    lam.add_response("get_function", _state("Pending", "InProgress"), BY_NAME)
    lam.add_response("get_function", _state("Pending", "InProgress"), BY_NAME)
    lam.add_response("get_function", SETTLED, BY_NAME)

    lambda_function.wait_settled(clients, FUNCTION)

    assert fake_time == [2.0, 2.0]
    assert clients.notify == ["waiting for the function to settle: State Pending, LastUpdateStatus InProgress"] * 2


def test_a_failed_function_says_lambdas_reason(clients, lam, fake_time):
    lam.add_response("get_function", _state("Failed", "Failed", StateReason="Image manifest is not supported"),
                     BY_NAME)
    with pytest.raises(ReconcileError, match="is Failed, last update Failed: Image manifest is not supported"):
        lambda_function.wait_settled(clients, FUNCTION)
    assert fake_time == []


def test_waiting_stops_at_its_budget(clients, lam, fake_time):
    for _ in range(3):
        lam.add_response("get_function", _state("Pending", "InProgress"), BY_NAME)
    with pytest.raises(ReconcileError, match=r"still Pending \(last update InProgress\) after 5s"):
        lambda_function.wait_settled(clients, FUNCTION, budget=5.0)
    assert sum(fake_time) <= 5.0
