"""`reconcile demo` as a newcomer runs it: the README's first command must never rot.

The demo runs as a subprocess with AWS settings of a user's pointing nowhere useful (a profile
that does not exist, a config file naming a dead endpoint, an S3 endpoint override): it must
ignore them all, and leave no process and no listening port behind — on success, on a failure,
and on Ctrl-C.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from reconciler.demo import demo_document
from tests.e2e.conftest import reconcile_command, resources_in
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


def demo_resources(tmp_path: Path) -> int:
    """How many resources the demo's own canvas.yaml declares, counted by the kinds."""
    canvas = tmp_path / "counted" / "canvas.yaml"
    canvas.parent.mkdir()
    canvas.write_text(yaml.safe_dump(demo_document(), sort_keys=False))
    return resources_in(canvas)


def test_the_demo_tells_the_whole_story_and_leaves_nothing_running(tmp_path, user_environment):
    demo = run_demo(env=user_environment, cwd=tmp_path)
    assert demo.code == 0, demo.out + demo.err
    assert "Traceback" not in demo.err
    for number, name in enumerate(HEADINGS, 1):
        assert f"Step {number} of 10 · {name}: " in demo.out, name
    assert "no Docker" in demo.out and "image.build" in demo.out

    assert "$ reconcile validate\ncanvas.yaml is valid: stack code-canvas-astro in us-west-2." in demo.step(1)
    total = demo_resources(tmp_path)
    assert f"Plan: {total} to create, 0 to update, 0 to replace, 0 to delete." in demo.step(2)
    assert "$ reconcile stand-in-image\nCreated ecr_repository.python-repl-container-lambda" in demo.step(3)
    assert "Registered a stand-in image as python-repl-container-lambda:v1.2 (sha256:" in demo.step(3)
    # stand-in-image made two of them first: the repository and the image in it.
    assert f"Apply complete: {total - 2} change(s) made." in demo.step(3)
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


# ---- every command the demo prints runs as shown ------------------------------------------------

@dataclass
class Printed:
    command: str  # as printed, continuation lines joined with their backslashes
    shown: str    # what the demo printed after it, up to the next command or heading


def printed_commands(out: str) -> list[Printed]:
    lines, found, index = out.splitlines(), [], 0
    while index < len(lines):
        if not lines[index].startswith("$ "):
            index += 1
            continue
        command = [lines[index][2:]]
        while command[-1].endswith("\\"):
            index += 1
            command.append(lines[index])
        shown, index = [], index + 1
        while index < len(lines) and not lines[index].startswith(("$ ", "━━ ")):
            shown.append(lines[index])
            index += 1
        found.append(Printed("\n".join(command), "\n".join(shown)))
    return found


def shell(setup: list[str], command: str, env: dict, **kwargs):
    """The command in bash after the demo's setup lines; the demo shows only stdout (stderr goes aside)."""
    kwargs.setdefault("stderr", subprocess.STDOUT)
    return subprocess.Popen(["bash", "-c", "\n".join([*setup, command])], env=env, text=True,
                            stdout=subprocess.PIPE, **kwargs)


def serving_runtime(pid: int) -> int:
    """The `python -m runtime serve` process under `pid`: bash execs the last command itself, or forks it."""
    for candidate in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]:
        if b"runtime\0serve" in Path(f"/proc/{candidate}/cmdline").read_bytes():
            return candidate
    raise AssertionError(f"no runtime under pid {pid}")


def test_every_command_the_demo_prints_runs_as_shown_and_gives_what_it_showed(tmp_path, user_environment):
    """`demo --keep`, then each printed command replayed in order in a shell of the user's (their own
    AWS settings still set), after only the setup lines the demo printed: same exit codes, outputs,
    HTTP answers. The only difference allowed is the state the demo left (the task it wrote)."""
    proc = subprocess.Popen(reconcile_command() + ["demo", "--keep"], cwd=tmp_path, env=user_environment,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    out, deadline = "", time.monotonic() + 90
    try:
        while "runs as shown. Ctrl-C here" not in out:
            assert time.monotonic() < deadline and proc.poll() is None, out
            with contextlib.suppress(queue.Empty):
                out += lines.get(timeout=1)
        kept = out[out.index("until Ctrl-C. In another shell:"):]
        setup = [line.strip() for line in kept.splitlines()[1:] if line.startswith("    ")]
        assert [line.split()[0] for line in setup] == ["export", "export", "unset", "cd"], kept
        env = {**user_environment, "PATH": f"{os.path.dirname(sys.executable)}:{user_environment['PATH']}"}

        commands = printed_commands(out[:out.index("Demo complete in")])
        assert [c.command.split()[0] for c in commands] == [
            "reconcile", "reconcile", "reconcile", "reconcile", "reconcile", "python", "reconcile", "reconcile",
            "reconcile", "DB_PATH=" + commands[9].command.split()[0].split("=", 1)[1], "curl",
            "DB_PATH=" + commands[11].command.split()[0].split("=", 1)[1], "curl"], [c.command for c in commands]
        runtime, replayed = None, 0
        for printed in commands:
            if printed.command.startswith("DB_PATH="):
                runtime = shell(setup, printed.command, env, start_new_session=True)
                port = int(re.search(r"--port (\d+)", printed.command)[1])
                until = time.monotonic() + 30
                while not answers(port):
                    assert runtime.poll() is None and time.monotonic() < until, runtime.stdout.read()
                    time.sleep(0.1)
            elif printed.command.startswith("curl "):
                done = shell(setup, printed.command, env, stderr=subprocess.DEVNULL)  # curl's progress meter
                body = json.loads(done.communicate(timeout=30)[0])
                status, shown = printed.shown.splitlines()[0].split(" ", 1)
                assert done.returncode == 0
                if status == "201":  # the POST: one more task with the same fields, a new id
                    assert {**body, "id": None} == {**json.loads(shown), "id": None}, body
                else:  # the GET after the cold start: everything the demo read, and the replayed POST
                    assert status == "200" and all(task in body for task in json.loads(shown)), body
                    assert len(body) == len(json.loads(shown)) + 1, body
                os.kill(serving_runtime(runtime.pid), signal.SIGTERM)  # as the demo stops it
                assert runtime.wait(30) == 0, runtime.stdout.read()
            else:
                done = shell(setup, printed.command, env, stderr=subprocess.PIPE)
                text, err = done.communicate(timeout=120)
                expected = 2 if "exit code 2" in printed.shown else 0
                assert done.returncode == expected, (printed.command, text, err)
                assert "Traceback" not in text + err
                compared = printed.command in ("reconcile outputs", "reconcile validate")
                if compared or printed.command.startswith("python"):
                    assert text.strip() == printed.shown.strip(), (printed.command, text, printed.shown)
                if printed.command == "reconcile stand-in-image":
                    digest = re.search(r"sha256:[0-9a-f]{64}", printed.shown)[0]
                    assert digest in text, text
            replayed += 1
        assert replayed == len(commands) == 13

        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.2)
    while not lines.empty():
        out += lines.get()
    assert code == 0, out + proc.stderr.read()
    assert "Stopped: the emulator is gone" in out
    assert_nothing_left(out, runtimes=2)
