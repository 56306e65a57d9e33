"""`reconcile demo` as a newcomer runs it: the README's first command must never rot.

The demo runs as a subprocess with AWS settings of a user's pointing nowhere useful (a profile
that does not exist, a config file naming a dead endpoint, an S3 endpoint override): it must
ignore them all, and leave no process and no listening port behind — on success, on a failure,
and on Ctrl-C.
"""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import reconcile_command
from tests.local_net import alive, answers

HEADINGS = ["validate", "plan", "apply", "plan again", "a change by hand", "plan shows the drift",
            "apply repairs it", "outputs", "the runtime", "a cold start"]
TITLE = "Try canvas-reconcile on a real account"


@dataclass
class Demo:
    code: int
    out: str
    err: str
    seconds: float

    def step(self, number: int) -> str:
        """The output of one step, from its heading to the next."""
        start = self.out.index(f"Step {number} of 10 · ")
        end = self.out.find(f"Step {number + 1} of 10 · ", start)
        return self.out[start:end if end != -1 else None]


@pytest.fixture
def user_environment(tmp_path, dead_endpoint):
    """A user's AWS settings the demo must not use: any of them reaching a client breaks the demo."""
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = eu-north-1\nendpoint_url = {dead_endpoint}\n"
                      f"[profile someone]\nregion = eu-north-1\nendpoint_url = {dead_endpoint}\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(config), "AWS_PROFILE": "someone",
                "AWS_ENDPOINT_URL_S3": dead_endpoint, "AWS_ACCESS_KEY_ID": "AKIAUSERSOWNKEY00000",
                "AWS_SECRET_ACCESS_KEY": "not-for-the-demo"})
    return env


def run_demo(*args: str, env: dict, cwd, timeout: float = 90) -> Demo:
    started = time.monotonic()
    proc = subprocess.run(reconcile_command() + ["demo", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return Demo(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def started_pids_and_ports(out: str) -> tuple[list[int], list[int]]:
    """Every process and port the demo reported: the emulator, the runtimes and their apps."""
    pids = [int(p) for p in re.findall(r"runtime pid (\d+) started", out) + re.findall(r"app pid (\d+)", out)]
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", out)]
    ports += [int(p) for p in re.findall(r"on port (\d+)", out)]
    return pids, ports


def assert_nothing_left(out: str, *, runtimes: int) -> None:
    pids, ports = started_pids_and_ports(out)
    assert len(re.findall(r"runtime pid \d+ started", out)) == runtimes, out
    assert ports, out
    assert [pid for pid in pids if alive(pid)] == [], out
    assert [port for port in set(ports) if answers(port)] == [], out


def test_the_demo_tells_the_whole_story_and_leaves_nothing_running(tmp_path, user_environment):
    demo = run_demo(env=user_environment, cwd=tmp_path)
    assert demo.code == 0, demo.out + demo.err
    assert "Traceback" not in demo.err
    for number, name in enumerate(HEADINGS, 1):
        assert f"Step {number} of 10 · {name}: " in demo.out, name
    assert "no Docker" in demo.out and "image.build" in demo.out

    assert "$ reconcile validate\ncanvas.yaml is valid: stack code-canvas-astro in us-west-2." in demo.step(1)
    assert "Plan: 8 to create, 0 to update, 0 to replace, 0 to delete." in demo.step(2)
    assert "imageDigest: sha256:" in demo.step(3) and "Apply complete: 6 change(s) made." in demo.step(3)
    assert "No changes. Live state matches canvas.yaml." in demo.step(4) and "exit code 0" in demo.step(4)

    drift = demo.step(6)
    assert "~ lambda_function.code-canvas-astro-lambda will be updated in place" in drift
    assert re.findall(r"^ +[~+-] .*$", drift, re.MULTILINE) == [
        "  ~ lambda_function.code-canvas-astro-lambda will be updated in place", "      ~ memory: 1024 → 2048  (drift)"]
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." in drift
    assert "exit code 2" in drift
    assert "[1/1] update lambda_function.code-canvas-astro-lambda … SUCCESS" in demo.step(7)
    assert re.search(r"^bucket = code-canvas-astro-db$", demo.step(8), re.MULTILINE)

    assert re.search(r"^201 .*" + TITLE, demo.step(9), re.MULTILINE)
    cold = demo.step(10)
    assert "restored s3://code-canvas-astro-db/database/taskManagement.db" in cold
    assert re.search(r"^200 \[.*" + TITLE, cold, re.MULTILINE), cold  # read back after the cold start
    assert "Demo complete in" in cold
    assert_nothing_left(demo.out, runtimes=2)
    assert demo.seconds < 60, f"the demo took {demo.seconds:.1f}s"


def test_a_failing_step_is_one_clear_message_and_everything_is_stopped(tmp_path, user_environment):
    app = tmp_path / "broken_app.py"
    app.write_text("import sys\nprint('this app refuses to start')\nsys.exit(3)\n")
    demo = run_demo("--app", str(app), env=user_environment, cwd=tmp_path)
    assert demo.code == 1, demo.out + demo.err
    assert "Error: the demo failed at step 9 of 10 (the runtime): the runtime's cold start failed" in demo.err
    assert "exited with code 3" in demo.err
    assert "Everything the demo started is stopped" in demo.err
    assert "Traceback" not in demo.out + demo.err
    assert "Step 10 of 10" not in demo.out
    assert_nothing_left(demo.out, runtimes=1)


def test_ctrl_c_stops_everything_the_demo_started(tmp_path, user_environment):
    proc = subprocess.Popen(reconcile_command() + ["demo"], cwd=tmp_path, env=user_environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen, deadline = "", time.monotonic() + 60
    try:
        while "the runtime serves on" not in seen:  # the emulator and a runtime with its app are up
            assert time.monotonic() < deadline and proc.poll() is None, seen
            try:
                seen += lines.get(timeout=1)
            except queue.Empty:
                pass
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    time.sleep(0.2)  # the reader thread drains what was printed while stopping
    while not lines.empty():
        seen += lines.get()
    assert code == 130, seen + err
    assert "Interrupted. Everything the demo started is stopped." in err
    assert "Traceback" not in err
    assert_nothing_left(seen, runtimes=1)
