"""`reconcile local`: the emulator in the foreground, for trying one's own canvas.yaml."""
from __future__ import annotations

import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest

from tests.e2e.conftest import reconcile_command
from tests.local_net import LOOPBACK_V4, answers, free_port, listen_addresses


def read_until(proc: subprocess.Popen, marker: str, *, timeout: float = 30) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen, deadline = "", time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, f"no {marker!r} in:\n{seen}"
        try:
            seen += lines.get(timeout=0.5)
        except queue.Empty:
            pass
    return seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_it_prints_what_to_export_serves_aws_calls_and_stops_cleanly(tmp_path, signum):
    port = free_port()
    proc = subprocess.Popen(reconcile_command() + ["local", "--port", str(port)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        shown = read_until(proc, "unset AWS_PROFILE")
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}\n" in shown
        assert "export AWS_ACCESS_KEY_ID=testing\n" in shown and "export AWS_SECRET_ACCESS_KEY=testing\n" in shown
        if Path("/proc/net/tcp").exists():
            assert listen_addresses(port) == {LOOPBACK_V4}

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-west-2",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="my-own-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["my-own-bucket"]

        started = time.monotonic()
        proc.send_signal(signum)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, proc.stderr.read()
    assert time.monotonic() - started < 5
    assert "Traceback" not in proc.stderr.read()
    assert not answers(port)


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(reconcile_command() + ["local", "--port", str(port)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=30)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"Error: port {port} on 127.0.0.1 is already in use" in run.stderr
    assert "--port" in run.stderr and "Traceback" not in run.stderr
    assert "export AWS_ENDPOINT_URL" not in run.stdout
