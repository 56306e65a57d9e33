"""A fork server for the tests' `reconcile` runs: the command in a process of its own, without
paying the interpreter's start-up and the imports each time (issue 12).

A `reconcile` process spends ~0.5 s of CPU importing boto3, botocore and the tool before it does
anything, and the e2e suite starts several hundred of them. The server imports all of that once,
then for each run forks: the child takes the run's argv, working directory, environment and
stdin/stdout/stderr (passed over a Unix socket), and runs the console script's entry point at
the top level, so it ends as a `reconcile` process ends (atexit handlers, threads joined, the
exit code from SystemExit, a traceback on an uncaught exception). To the test it is a process:
a pid to signal, pipes, a return code (negative when a signal ended it), a tty when given one.

The server also reads ahead botocore's data for the services the tool uses, into one loader
every Session shares (tests/botocore_models.py), and freezes what it holds out of the garbage
collector's reach: a run's collections then never walk (and copy, page by page) the objects it
inherited. A run ends as Python ends (non-daemon threads joined, atexit handlers run, the
streams flushed, the exit code of SystemExit) but without the interpreter's teardown, which in a
fork touched every inherited object and was most of a short run's CPU (~90 ms of `--version`'s
100). An uncaught exception, a SystemExit with a message, or a flush that fails still ends with
the full teardown, as Python reports them.

What it does not show, and the tests that still start the installed script for it: the
interpreter's start-up, import order and teardown (tests/unit/test_quick_exit.py and the
start-up benchmark), botocore reading its data files, and the console script itself (the demo,
the README's blocks, the drift workflow).

Each run is forked twice: the server forks a supervisor, which forks the run and reports the
run's pid and then its exit code back on the run's connection. The server itself never waits on
anyone, so it stays single-threaded and needs no bookkeeping; it ends when its stdin closes (the
test process that started it is gone) or at close().
"""
from __future__ import annotations

import atexit
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

# What every `reconcile` command may import, imported once by the server.
PRELOAD = ("reconciler.cli", "reconciler.aws", "reconciler.planner", "reconciler.apply", "reconciler.destroy",
           "reconciler.outputs", "reconciler.saved_plan", "reconciler.lock", "reconciler.record",
           "reconciler.db", "reconciler.db_history", "reconciler.db_render", "reconciler.logs",
           "reconciler.status", "reconciler.stand_in", "reconciler.image_build", "reconciler.kinds",
           "reconciler.render", "reconciler.diff", "reconciler.spec", "runtime.remote", "runtime.store",
           "boto3", "botocore.client", "botocore.session", "botocore.endpoint", "botocore.credentials",
           "botocore.httpsession", "botocore.waiter", "botocore.paginate", "deepdiff", "jsonschema")
SERVICES = ("s3", "ecr", "iam", "lambda", "sts", "logs", "cloudwatch")  # every client a command makes
MESSAGE = 1 << 20  # one request: argv, cwd and environment, well under this


# -- the server side ---------------------------------------------------------------------------

def _serve(path: str) -> tuple[dict, list[int]]:
    """Accept runs until stdin closes; returns only in a forked run, with its request."""
    for name in PRELOAD:
        __import__(name)
    root = str(Path(__file__).resolve().parents[1])
    sys.path.append(root)  # for tests.botocore_models, and only for it: a run's path is a real one's
    from tests.botocore_models import load_models

    sys.path.remove(root)
    load_models(SERVICES)
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        readable, _, _ = select.select([listener, sys.stdin.fileno()], [], [])
        if sys.stdin.fileno() in readable and not os.read(sys.stdin.fileno(), 1):
            os._exit(0)
        if listener in readable:
            conn, _ = listener.accept()
            data, fds, _, _ = socket.recv_fds(conn, MESSAGE, 3)
            sys.stdout.flush()  # nothing of the server's may reach a run's stdout
            if os.fork() == 0:
                listener.close()
                _supervise(conn, fds)  # returns only in the run itself
                return json.loads(data), fds
            conn.close()
            for fd in fds:
                os.close(fd)


def _supervise(conn: socket.socket, fds: list[int]) -> None:
    """Fork the run and tell the test its pid, then its exit code; returns only in the run."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        return
    for fd in fds:
        os.close(fd)
    conn.send(str(pid).encode())
    _, status = os.waitpid(pid, 0)
    conn.send(str(os.waitstatus_to_exitcode(status)).encode())
    os._exit(0)


def _become(request: dict, fds: list[int]) -> None:
    """Turn this fork into the run: its stdio, directory, environment and argv."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    # The streams were opened when the server started; a fresh process would line-buffer a tty.
    sys.stdout.reconfigure(line_buffering=os.isatty(1))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(sys.argv[0])  # where a console script's own directory is


# -- the test side -------------------------------------------------------------------------------

class ForkServer:
    """One server per test process (tests/e2e/conftest.py starts it for the session)."""

    def __init__(self, script: str):
        self.script = script  # argv[0] of every run: the installed console script's path
        self._dir = tempfile.mkdtemp(prefix="forkserver-")
        self.path = os.path.join(self._dir, "socket")
        self._server = subprocess.Popen([sys.executable, __file__, self.path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, start_new_session=True)
        assert self._server.stdout is not None
        if self._server.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the fork server did not start (exit {self._server.wait()})")

    def popen(self, args: list[str], *, cwd: str | Path, env: dict[str, str] | None = None, stdin: Any = None,
              stdout: Any = None, stderr: Any = None, text: bool = False) -> ForkedRun:
        return ForkedRun(self, [self.script, *args], cwd=str(cwd), env=dict(os.environ if env is None else env),
                         stdin=stdin, stdout=stdout, stderr=stderr, text=text)

    def close(self) -> None:
        if self._server.poll() is None:
            self._server.kill()
            self._server.wait()
        for stream in (self._server.stdin, self._server.stdout):
            if stream:
                stream.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rmdir(self._dir)


def _child_end(spec: Any, *, reading: bool) -> tuple[int, int | None]:
    """(the fd the run gets, our end of a pipe or None) for a Popen-style stdin/stdout/stderr."""
    if spec == subprocess.PIPE:
        read, write = os.pipe()
        return (read, write) if reading else (write, read)
    if spec == subprocess.DEVNULL or spec is None:
        # None would be "inherit": a run's output belongs to the test, so it goes nowhere.
        return os.open(os.devnull, os.O_RDONLY if reading else os.O_WRONLY), None
    return os.dup(spec if isinstance(spec, int) else spec.fileno()), None


class ForkedRun:
    """The part of subprocess.Popen the tests use: pid, the pipes, poll, wait, communicate, signals."""

    def __init__(self, server: ForkServer, argv: list[str], *, cwd: str, env: dict[str, str], stdin: Any,
                 stdout: Any, stderr: Any, text: bool):
        self.args, self.returncode, self._text = argv, None, text
        ends = [_child_end(stdin, reading=True), _child_end(stdout, reading=False),
                _child_end(stderr, reading=False)]
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._conn.connect(server.path)
            request = json.dumps({"argv": argv, "cwd": cwd, "env": env}).encode()
            socket.send_fds(self._conn, [request], [child for child, _ in ends])
            self.pid = int(self._conn.recv(64))
        finally:
            for child, _ in ends:
                os.close(child)
        mode = ("w", "r", "r")
        self.stdin, self.stdout, self.stderr = (
            None if ours is None else _stream(ours, mode[n], text) for n, (_, ours) in enumerate(ends))
        self._readers: list[threading.Thread] = []
        self._output: dict[int, list] = {1: [], 2: []}

    def poll(self) -> int | None:
        if self.returncode is None:
            self._conn.setblocking(False)
            try:
                self._finished(self._conn.recv(64))
            except BlockingIOError:
                self._conn.setblocking(True)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                self._finished(self._conn.recv(64))
            except socket.timeout:
                self._conn.settimeout(None)
                raise subprocess.TimeoutExpired(self.args, timeout) from None
        assert self.returncode is not None
        return self.returncode

    def _finished(self, answer: bytes) -> None:
        if not answer:
            raise RuntimeError("the fork server's supervisor went away without an exit code")
        self.returncode = int(answer)
        self._conn.close()  # the supervisor has said all it will

    def communicate(self, input: str | bytes | None = None, timeout: float | None = None) -> tuple[Any, Any]:
        if not self._readers:
            for n, stream in ((1, self.stdout), (2, self.stderr)):
                if stream is not None:
                    reader = threading.Thread(target=_drain, args=(stream, self._output[n]), daemon=True)
                    reader.start()
                    self._readers.append(reader)
            if self.stdin is not None:
                threading.Thread(target=_feed, args=(self.stdin, input), daemon=True).start()
        self.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        empty = "" if self._text else b""
        joined = [None if stream is None else empty.join(self._output[n])
                  for n, stream in ((1, self.stdout), (2, self.stderr))]
        return joined[0], joined[1]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass  # it ended between the poll and the signal, as Popen allows

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def __enter__(self) -> ForkedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


def _stream(fd: int, mode: str, text: bool) -> IO:
    return open(fd, mode if text else mode + "b", **({"encoding": "utf-8"} if text else {}))


def _drain(stream: IO, into: list) -> None:
    into.append(stream.read())
    stream.close()


def _feed(stream: IO, data: str | bytes | None) -> None:
    try:
        if data:
            stream.write(data)
        stream.close()
    except BrokenPipeError:
        pass  # the run ended without reading it all, as Popen.communicate allows


def _end(code: int) -> None:
    """End the run as Python would end it, without the interpreter's teardown."""
    # What Py_Finalize does first, in its order: threading's exit hooks (concurrent.futures wakes
    # its idle workers there), non-daemon threads joined, then the atexit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # the rest as Python does it: it reports the failed flush and exits 120
    os._exit(code)


if __name__ == "__main__":
    _request, _fds = _serve(sys.argv[1])
    _become(_request, _fds)
    del _request, _fds
    from reconciler.cli import entry

    try:
        entry()
    except SystemExit as done:
        if done.code is not None and not isinstance(done.code, int):
            raise  # sys.exit("a message"): Python prints it and exits 1
        _end(done.code or 0)
    _end(0)
