"""The emulator module: moto on 127.0.0.1 only, stopped with its port freed, a taken port a clear
error (never a hang), and the stand-in for `docker push`.

Every moto server in one process shares moto's backends, so what these tests create has a unique
name and is removed again: the session's server (tests/conftest.py) sees the same state.
"""
from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import boto3
import pytest

from reconciler.emulator import HOST, Emulator, EmulatorError, _moto_server, register_image
from tests.local_net import LOOPBACK_V4, answers, free_port, listen_addresses


def client(service: str, url: str):
    return boto3.client(service, endpoint_url=url, region_name="us-west-2",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_it_serves_aws_calls_on_loopback_only_and_frees_its_port_when_stopped():
    emulator = Emulator().start()
    try:
        port = emulator.port
        assert emulator.url == f"http://127.0.0.1:{port}"
        if Path("/proc/net/tcp").exists():
            assert listen_addresses(port) == {LOOPBACK_V4}  # 127.0.0.1, not 0.0.0.0 or ::
        s3, bucket = client("s3", emulator.url), f"emu-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        s3.delete_bucket(Bucket=bucket)
        # The client hangs up first: a keep-alive connection the server ends at stop() would sit
        # in TIME_WAIT on the emulator's port, and the bind below would fail for a minute
        # though the listener is gone (seen once in CI).
        s3.close()
    finally:
        emulator.stop()
    assert not answers(port)
    with socket.socket() as again:  # closed, not merely shut down: the port can be bound at once
        again.bind((HOST, port))


def test_a_requested_port_is_used_and_the_context_manager_stops_it():
    port = free_port()
    with Emulator(port=port) as emulator:
        assert emulator.port == port
        assert client("sts", emulator.url).get_caller_identity()["Account"]
    assert not answers(port)
    with pytest.raises(EmulatorError, match="not running"):
        _ = emulator.url


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmulatorError, match=rf"port {port} on 127\.0\.0\.1 is already in use .*--port"):
            Emulator(port=port).start()


def test_moto_failing_to_bind_is_reported_instead_of_hanging(capfd):
    # The port check before start closes the usual case; this is the race where the port is taken
    # in between. werkzeug then exits its thread, and moto's own start() would wait forever.
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        server = _moto_server(taken.getsockname()[1])
        starting = threading.Thread(target=server.start, daemon=True)
        starting.start()
        starting.join(10)
        assert not starting.is_alive(), "start() hung on a port in use"
        assert server.error is not None
        server.stop()


def test_the_managed_policies_a_role_attaches_exist(moto_server):
    iam = client("iam", moto_server)
    policy = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")["Policy"]
    assert policy["PolicyName"] == "AWSLambdaBasicExecutionRole"


def test_register_image_puts_a_tag_and_moves_it_on_a_new_push(moto_server):
    ecr, repository = client("ecr", moto_server), f"emu-{uuid.uuid4().hex[:12]}"
    ecr.create_repository(repositoryName=repository)
    try:
        first = register_image(ecr, repository, "v1", b"one")
        second = register_image(ecr, repository, "v1", b"two")
        assert first.startswith("sha256:") and second.startswith("sha256:") and first != second
        described = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": "v1"}])["imageDetails"]
        assert [d["imageDigest"] for d in described] == [second]
    finally:
        ecr.delete_repository(repositoryName=repository, force=True)
