"""cli.entry ends a read-only command's process without the interpreter's teardown: what it
printed and what atexit holds still come out, the exit code is the command's, and a thread
Python would wait for is still waited for."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_entry(prelude: str, *args: str) -> subprocess.CompletedProcess:
    script = (f"import sys, atexit, threading, time\n{prelude}\n"
              f"sys.argv = ['reconcile', *{list(args)!r}]\nfrom reconciler import cli\ncli.entry()\n")
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_output_and_atexit_handlers_survive_the_quick_exit():
    done = run_entry("atexit.register(lambda: print('atexit ran', flush=False))", "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["canvas.yaml is valid: stack code-canvas-astro in us-west-2.", "atexit ran"]


def test_the_exit_code_is_the_commands():
    done = run_entry("", "validate", "-f", "no-such-canvas.yaml")
    assert done.returncode == 1 and "file not found" in done.stderr


def test_a_thread_python_would_wait_for_is_waited_for():
    prelude = "threading.Thread(target=lambda: (time.sleep(0.5), print('thread finished'))).start()"
    done = run_entry(prelude, "validate")
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "thread finished"
