"""Fixtures shared by every test layer: fake credentials and a moto server on loopback.

moto reads MOTO_IAM_LOAD_MANAGED_POLICIES when its IAM backend is first built, and
MOTO_LAMBDA_STUB_ECR when a function is created, so both are set here, before any
test imports moto.
"""
import logging
import os

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
os.environ.setdefault("MOTO_LAMBDA_STUB_ECR", "FALSE")

import json  # noqa: E402

import moto.iam.models  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

# moto builds every AWS managed policy it knows (~1,300) each time an IAM backend starts,
# about 2 s a test. The tests need a few real ones, so moto's own data is cut to those.
MANAGED_POLICIES_USED = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AmazonS3ReadOnlyAccess")
_all_policies = json.loads(moto.iam.models.aws_managed_policies_data)
moto.iam.models.aws_managed_policies_data = json.dumps({name: _all_policies[name] for name in MANAGED_POLICIES_USED})

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
}


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch):
    """Never let a test reach a real account: fake keys, no profile, no config files."""
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="session")
def moto_server():
    """One moto server for the session, on 127.0.0.1 and a free port; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_endpoint(moto_server, monkeypatch):
    """A clean emulator for one test: state reset, AWS_ENDPOINT_URL pointing at it."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def fake_docker(tmp_path_factory, monkeypatch, moto_server):
    """The fake `docker` (tests/fakes/docker, a test double) first on PATH, pushing into the moto
    server. moto keeps its state per process, so the server and an in-process mock_aws share
    it: functional tests see what the fake pushed, as e2e tests do."""
    from tests.fakes.harness import install

    return install(tmp_path_factory.mktemp("fake-docker"), monkeypatch, endpoint=moto_server)


@pytest.fixture
def no_docker(tmp_path_factory, monkeypatch):
    """PATH holding nothing at all, so there is no `docker` to find (reconcile itself is run by
    its absolute path)."""
    empty = tmp_path_factory.mktemp("empty-path")
    monkeypatch.setenv("PATH", str(empty))
    return empty
