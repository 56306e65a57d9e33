"""Fixtures for driving the runtime as a user does: ``python -m runtime serve`` as a subprocess in
its own process group, S3 from the shared moto server (tests/conftest.py), real HTTP in between.

Each test gets its own freshly created bucket on the session's moto server instead of a full
``/moto-api/reset``: with MOTO_IAM_LOAD_MANAGED_POLICIES=true (which the reconciler's tests need)
every reset rebuilds the IAM backend and the next S3 write rebuilds it again, about 2.5 s per
test here. A unique bucket isolates the tests just as well; it is emptied and deleted afterwards.
"""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest
from runtime_testkit import (
    PROBE_APP,
    S3,
    TASKBOARD,
    RuntimeProcess,
    free_port,
    runtime_environment,
    serve_fake_extensions_api,
)

from runtime import handler as lambda_handler


@pytest.fixture
def s3(moto_server, monkeypatch, tmp_path) -> S3:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    bucket = S3(moto_server, f"rt-{uuid.uuid4().hex[:12]}", tmp_path)
    yield bucket
    bucket.delete_bucket()


@pytest.fixture
def runtime_env(s3, moto_server, tmp_path):
    """The environment for one runtime: a fresh DB_PATH and app port each call."""
    counter = iter(range(1, 100))

    def make(app: Path = TASKBOARD, **overrides: str) -> dict[str, str]:
        home = tmp_path / f"env{next(counter)}"
        home.mkdir()
        return runtime_environment(endpoint=moto_server, bucket=s3.bucket, home=home, app=app, **overrides)

    return make


@pytest.fixture
def start_runtime(runtime_env, tmp_path):
    """Start runtimes (keyword arguments override environment variables); all are killed afterwards."""
    started: list[RuntimeProcess] = []

    def start(app: Path = TASKBOARD, *, env: dict[str, str] | None = None, **overrides: str) -> RuntimeProcess:
        environment = env or runtime_env(app, **overrides)
        process = RuntimeProcess(environment, tmp_path / f"runtime-{len(started) + 1}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


@pytest.fixture
def probe_env(runtime_env, tmp_path):
    def make(**overrides: str) -> dict[str, str]:
        gate = tmp_path / f"gate-{time.monotonic_ns()}"
        gate.mkdir()
        return runtime_env(PROBE_APP, GATE_DIR=str(gate), **overrides)

    return make


@pytest.fixture
def extensions_api():
    api = serve_fake_extensions_api()
    yield api
    api.stop()


@pytest.fixture
def lambda_env(s3, monkeypatch, tmp_path):
    """The environment for runtime.handler.handler in-process; its Runtime is shut down afterwards."""
    for name, value in {"S3_BUCKET_NAME": s3.bucket, "S3_DB_KEY": s3.key, "DB_PATH": str(tmp_path / "tmp" / "db"),
                        "APP_COMMAND": f"{sys.executable} {TASKBOARD}", "PORT": str(free_port()),
                        "READY_PATH": "/healthz"}.items():
        monkeypatch.setenv(name, value)
    yield
    if lambda_handler._runtime is not None:
        lambda_handler._runtime.shutdown()
    lambda_handler._runtime = None
