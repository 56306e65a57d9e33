"""Functional fixtures: the engine against moto in-process, one canvas.yaml per test.

Every test gets a fresh emulator and its own bucket, repository and role names. The
engine's clients and the colleague's console clients are built once for the package:
building a boto3 session reloads botocore's service models, which costs more than a test.
`canvas` and `console` are the foundation's (moto_harness: S3, ECR, IAM); `stack`,
`lambda_console`, `deploy` and `deployed` the whole stack's (lambda_harness).
"""
from __future__ import annotations

import uuid
from typing import Callable

import boto3
import pytest
from moto import mock_aws

# The harnesses' assert helpers get pytest's detailed failure messages too: registered before
# they are imported, hence the E402s.
pytest.register_assert_rewrite("moto_harness", "lambda_harness")

from lambda_harness import (  # noqa: E402
    SERVICES,
    STACK_TAGS,
    LambdaCanvas,
    LambdaConsole,
    ParamsRecorder,
    engine_clients_for,
    make_stack,
)
from moto_harness import (  # noqa: E402
    FAKE_ENV,
    OTHER_REGION,
    REGION,
    CallRecorder,
    Canvas,
    Console,
    Names,
    inject_error,
)

from reconciler.aws import Clients  # noqa: E402


@pytest.fixture(autouse=True)
def emulator():
    with mock_aws():
        yield


@pytest.fixture
def names() -> Names:
    suffix = uuid.uuid4().hex[:10]
    return Names(bucket=f"canvas-{suffix}-db", repository=f"canvas-{suffix}-repl", role=f"canvas-{suffix}-role")


@pytest.fixture(scope="package")
def engine_clients() -> tuple[Clients, CallRecorder]:
    """One Clients for the package, as one run has: building a session reloads botocore's
    service models, which would cost more than the tests themselves. Clients take their
    credentials when created, so the fake ones must be in place already."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        clients = Clients(region=REGION).warm(("s3", "ecr", "iam"))
    return clients, CallRecorder(clients)


@pytest.fixture
def canvas(tmp_path, names, engine_clients) -> Canvas:
    clients, calls = engine_clients
    calls.clear()
    canvas = Canvas(path=tmp_path / "canvas.yaml", names=names, clients=clients, calls=calls)
    canvas.write()
    return canvas


@pytest.fixture
def faults():
    """inject_error for one test; every fault is removed again at teardown."""
    removers = []

    def inject(client, operation: str, code: str, message: str, *, status: int = 400) -> Callable[[], None]:
        remove = inject_error(client, operation, code, message, status=status)
        removers.append(remove)
        return remove

    yield inject
    for remove in removers:
        remove()


@pytest.fixture(scope="package")
def console_clients() -> dict:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        session = boto3.Session()
        pairs = [("s3", REGION), ("ecr", REGION), ("iam", REGION), ("s3", OTHER_REGION)]
        return {(service, region): session.client(service, region_name=region) for service, region in pairs}


@pytest.fixture
def console(names, console_clients) -> Console:
    return Console(names, console_clients)


@pytest.fixture(scope="package")
def lambda_engine() -> tuple[Clients, ParamsRecorder]:
    """The whole stack's engine clients, once for the package (as engine_clients)."""
    return engine_clients_for()


@pytest.fixture(scope="package")
def lambda_console_clients() -> dict:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        session = boto3.Session()
        return {(service, REGION): session.client(service, region_name=REGION) for service in SERVICES}


@pytest.fixture
def stack(tmp_path, names, lambda_engine) -> LambdaCanvas:
    return make_stack(tmp_path / "canvas.yaml", names, *lambda_engine)


@pytest.fixture
def lambda_console(names, lambda_console_clients) -> LambdaConsole:
    return LambdaConsole(names, lambda_console_clients)


@pytest.fixture
def deploy(stack, lambda_console) -> Callable[..., LambdaCanvas]:
    """Deploy the whole stack (canvas.yaml changed by `edit` first, if given) and converge it,
    running the image pushed first; the calls recorded so far are cleared."""
    def deploy_with(edit: Callable[[dict], None] | None = None) -> LambdaCanvas:
        stack.write(edit)
        lambda_console.make_repository(STACK_TAGS)
        stack.first_digest = lambda_console.push(b"image one")
        stack.converge()
        stack.calls.clear()
        return stack
    return deploy_with


@pytest.fixture
def deployed(deploy) -> LambdaCanvas:
    return deploy()
