"""Fixtures shared by every test layer: fake credentials and a moto server on loopback.

Every botocore Session a test process makes shares one data loader (tests/botocore_models.py).

moto reads MOTO_IAM_LOAD_MANAGED_POLICIES when its IAM backend is first built, and
MOTO_LAMBDA_STUB_ECR when a function is created, so both are set here (by the emulator
module, which also cuts moto's managed-policy data to the few used), before any test
imports moto.
"""
import os

from reconciler.emulator import Emulator, configure_moto, trim_managed_policies
from tests.botocore_models import share_models

configure_moto()
trim_managed_policies()  # for moto in-process (mock_aws) too, not only for the server
share_models()  # every Session in this process reads botocore's data once

import pytest  # noqa: E402
import requests  # noqa: E402

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
    with Emulator() as emulator:
        yield emulator.url


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


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than there are cores. The suite spends much of its time waiting
    on subprocesses, loopback servers and injected delays; on 2 cores a third worker fills those
    waits (warm suite: 172 s with two, 157 s with three; four were no faster, issue 12).
    PYTEST_XDIST_AUTO_NUM_WORKERS and `-n logical` are left to xdist, as it documents them."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or config.option.numprocesses == "logical":
        return None
    return len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 1
