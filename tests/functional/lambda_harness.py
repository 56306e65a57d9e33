"""What the Lambda-side functional tests share: a canvas planned with every kind (moto_harness's
Canvas plans the foundation only), a colleague's Lambda console that can push an image as
`docker push` would, a call recorder that keeps each call's parameters, a fake clock for the
retries, and faults that pass after N failures.

The fixtures built from them (stack, lambda_console, deploy, deployed) are in conftest.py.
"""
from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from botocore.awsrequest import AWSResponse
from moto_harness import FAKE_ENV, LAMBDA_TRUST, REGION, STACK, USER_TAGS, CallRecorder, Canvas, Console, Names

from reconciler.aws import Clients
from reconciler.kinds.lambda_permission import URL_ACCESS, URL_INVOKE
from reconciler.plan import Plan
from reconciler.planner import build_plan
from reconciler.target import Target
from tests.ecr_images import register_image

FUNCTION = "code-canvas-astro-lambda"
TAG = "v1.2"
ACCOUNT = "123456789012"  # moto's
TARGET = Target(region=REGION, account=ACCOUNT)
SERVICES = ("s3", "ecr", "iam", "lambda", "sts")
STACK_TAGS = {**USER_TAGS, "canvas:stack": STACK}
ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."


def addresses(names: Names) -> dict[str, str]:
    """Every address of the stack, by kind (the two permissions by their Sid)."""
    return {
        **names.addresses,
        "container_image": f"container_image.{names.repository}:{TAG}",
        "lambda_function": f"lambda_function.{FUNCTION}",
        "lambda_function_url": f"lambda_function_url.{FUNCTION}",
        URL_ACCESS: f"lambda_permission.{URL_ACCESS}",
        URL_INVOKE: f"lambda_permission.{URL_INVOKE}",
    }


class ParamsRecorder(CallRecorder):
    """CallRecorder that also keeps the parameters of each call, as the engine passed them.

    before-parameter-build fires for every call, also for those a fault answers before they
    reach moto, so a retried call is counted once per attempt."""

    def __init__(self, clients: Clients):
        self.calls: list[tuple[str, str]] = []
        self.sent: list[tuple[str, dict]] = []
        for service, client in clients.services().items():
            client.meta.events.register("before-parameter-build", functools.partial(self._keep, service))

    def _keep(self, service: str, model, params, **_) -> None:
        self.calls.append((service, model.name))
        self.sent.append((model.name, dict(params)))

    def params(self, operation: str) -> list[dict]:
        return [params for name, params in self.sent if name == operation]

    def clear(self) -> None:
        self.calls.clear()
        self.sent.clear()


@dataclass
class FakeTime:
    """clock() and sleep() for Clients: sleeping only moves the clock."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Flaky:
    """A fault that answers the first `times` calls with an AWS error, then lets calls through."""

    times: int
    code: str
    message: str
    calls: int = 0

    def __call__(self, **_):
        self.calls += 1
        if self.calls > self.times:
            return None
        return AWSResponse(None, 400, {}, None), {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }


@dataclass
class LambdaCanvas(Canvas):
    """A Canvas whose plan covers every kind, image, function, URL and permissions included."""

    first_digest: str | None = None  # the image the `deployed` fixture pushed and deployed

    def write(self, edit: Callable[[dict], None] | None = None) -> None:
        """canvas.yaml without image.build: these tests push images by hand (LambdaConsole.push
        stands in for docker push), so the tool must never build; builds are test_image_build.py's."""
        def prebuilt(data: dict) -> None:
            if edit:
                edit(data)
            data["image"].pop("build", None)
        super().write(prebuilt)

    def plan(self) -> Plan:
        spec = self.spec()
        return build_plan(spec, self.clients, region=spec.region)

    @property
    def address(self) -> dict[str, str]:
        return addresses(self.names)


class LambdaConsole(Console):
    """The colleague's console with Lambda too, and `docker push` standing in as ECR PutImage."""

    def __init__(self, names: Names, clients: dict):
        super().__init__(names, clients)
        self.lam = clients[("lambda", REGION)]

    def push(self, content: bytes) -> str:
        return register_image(self.ecr, self.names.repository, TAG, content)

    def repository_uri(self) -> str:
        return TARGET.repository_uri(self.names.repository)

    def configuration(self) -> dict:
        return self.lam.get_function_configuration(FunctionName=FUNCTION)

    def environment(self) -> dict[str, str]:
        return self.configuration()["Environment"]["Variables"]

    def set_environment(self, variables: dict[str, str]) -> None:
        self.lam.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": variables})

    def function_arn(self) -> str:
        return self.configuration()["FunctionArn"]

    def function_tags(self) -> dict[str, str]:
        return self.lam.list_tags(Resource=self.function_arn())["Tags"]

    def running_digest(self) -> str:
        # moto reports a digest deployment as `repo@sha256@sha256:<hex>`; the last @ is the one.
        return self.lam.get_function(FunctionName=FUNCTION)["Code"]["ResolvedImageUri"].rpartition("@")[2]

    def url_config(self) -> dict:
        return self.lam.get_function_url_config(FunctionName=FUNCTION)

    def set_cors(self, **changes) -> None:
        """Change some CORS keys by hand, keeping the others (the API replaces the whole block)."""
        config = self.url_config()
        self.lam.update_function_url_config(FunctionName=FUNCTION, Cors={**config["Cors"], **changes})

    def statements(self) -> dict[str, dict]:
        try:
            policy = self.lam.get_policy(FunctionName=FUNCTION)["Policy"]
        except self.lam.exceptions.ResourceNotFoundException:
            return {}
        return {s["Sid"]: s for s in json.loads(policy)["Statement"]}

    def make_other_role(self) -> str:
        name = f"canvas-other-{uuid.uuid4().hex[:8]}"
        return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]


def engine_clients_for(**kwargs) -> tuple[Clients, ParamsRecorder]:
    """Clients take their credentials when created, so the fake ones must be in place already."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        clients = Clients(region=REGION, **kwargs).warm(SERVICES)
    return clients, ParamsRecorder(clients)


def make_stack(path: Path, names: Names, clients: Clients, calls: ParamsRecorder) -> LambdaCanvas:
    calls.clear()
    stack = LambdaCanvas(path=path, names=names, clients=clients, calls=calls)
    stack.write()
    return stack
