"""tests/forkserver.py, which runs most of the e2e suite's `reconcile` commands: a forked run must
be indistinguishable from the installed console script where the tests look (exit code, stdout,
stderr, its own directory and environment), and a process the tests can signal."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import reconcile_command
from tests.forkserver import ForkServer

REPO = Path(__file__).resolve().parents[2]
BROKEN = "stack: demo\nregion: us-west-2\nbucket:\n  name: Not_A_Bucket\n"


@pytest.fixture
def workdir(tmp_path, canvas_file):
    (tmp_path / "broken.yaml").write_text(BROKEN)
    return tmp_path


@pytest.mark.parametrize("args", [
    pytest.param(["--version"], id="version"),
    pytest.param(["validate"], id="valid"),
    pytest.param(["validate", "-f", "broken.yaml"], id="invalid-spec"),
    pytest.param(["validate", "-f", "missing.yaml"], id="missing-file"),
    pytest.param(["db", "restore"], id="bad-arguments"),
    pytest.param(["no-such-command"], id="click-usage-error"),
    pytest.param(["plan", "--json"], id="plan-against-the-environments-endpoint"),
])
def test_a_forked_run_answers_as_the_console_script_does(args, forkserver, workdir, moto_endpoint):
    forked = forkserver.popen(args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    out, err = forked.communicate(timeout=60)
    real = subprocess.run(reconcile_command() + args, cwd=workdir, capture_output=True, text=True, timeout=60)
    assert (forked.returncode, out, err) == (real.returncode, real.stdout, real.stderr)


def test_a_run_whose_stdout_was_closed_ends_as_the_console_script_does(forkserver, workdir):
    """Output into a pipe nobody reads: click turns the broken pipe into exit 1 and quiets the
    flush at the end, and a forked run must end the same way."""
    def closed_pipe() -> int:
        read, write = os.pipe()
        os.close(read)
        return write

    write = closed_pipe()
    try:
        forked = forkserver.popen(["--help"], cwd=workdir, stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    _, err = forked.communicate(timeout=60)
    write = closed_pipe()
    try:
        real = subprocess.run(reconcile_command() + ["--help"], cwd=workdir, stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write)
    assert real.returncode == 1, real.stderr
    assert (forked.returncode, err) == (real.returncode, real.stderr)


# A program with what Python finishes at exit: a non-daemon thread still to print, an executor
# left with an idle worker (its exit hook must wake it, or the join never ends), buffered output
# and an atexit handler; it ends with END, either sys.exit or the fork server's _end.
ENDING = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, sys.argv[1])
from tests.forkserver import _end
atexit.register(lambda: print("atexit handler"))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
ThreadPoolExecutor(max_workers=1).submit(lambda: None).result()
sys.stdout.write("buffered, no newline")
END
"""


def test_a_run_ends_as_python_ends_without_the_teardown(tmp_path):
    def run(end: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", ENDING.replace("END", end), str(REPO)], capture_output=True,
                              text=True, timeout=30)

    python, forked = run("sys.exit(3)"), run("_end(3)")
    assert python.returncode == 3 and python.stdout == "buffered, no newlinethread done\natexit handler\n"
    assert (forked.returncode, forked.stdout, forked.stderr) == (python.returncode, python.stdout, python.stderr)


def test_a_run_takes_the_environment_it_is_given_not_the_servers(forkserver, workdir, dead_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead_endpoint)
    forked = forkserver.popen(["plan"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = forked.communicate(timeout=60)
    assert forked.returncode == 1 and dead_endpoint in err and "cannot reach AWS" in err, err


def test_a_run_has_nothing_of_the_environment_the_server_started_with(workdir, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "a-profile-nobody-has")
    server = ForkServer(reconcile_command()[0])
    try:
        monkeypatch.delenv("AWS_PROFILE")
        forked = server.popen(["plan"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = forked.communicate(timeout=60)
    finally:
        server.close()
    assert forked.returncode == 0 and "a-profile-nobody-has" not in err and "Plan:" in out, err


def test_a_run_is_a_process_that_a_signal_ends(forkserver, workdir, monkeypatch):
    with socket.socket() as silent:  # accepts, never answers: the plan waits on it
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        forked = forkserver.popen(["plan"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with pytest.raises(subprocess.TimeoutExpired):
            forked.communicate(timeout=1.0)
        assert forked.poll() is None and forked.pid not in (os.getpid(), forkserver._server.pid)
        forked.kill()
        assert forked.wait(10) == -signal.SIGKILL


def test_the_server_ends_when_the_process_that_started_it_lets_go(tmp_path):
    server = ForkServer(reconcile_command()[0])
    try:
        assert server._server.poll() is None
        server._server.stdin.close()  # what the test process's exit does to it
        deadline = time.monotonic() + 10
        while server._server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server._server.poll() == 0
    finally:
        server.close()
    assert not os.path.exists(server.path)
