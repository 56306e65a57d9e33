"""The app server: its process (start, readiness, crash, restart, output) and the kept-alive
local connection every request is proxied over."""
from __future__ import annotations

import collections
import http.client
import logging
import select
import socket
import subprocess
import threading
import time
from typing import Mapping, Sequence

from runtime import ports
from runtime.events import MAX_PAYLOAD_BYTES, AppRequest, AppResponse, PayloadTooLarge

log = logging.getLogger(__name__)
app_log = logging.getLogger("runtime.app")

# Methods a proxy may resend after a dropped connection without risking a second effect.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_OUTPUT_LINES_KEPT = 40


class AppError(Exception):
    """The app could not be started or did not answer."""


class AppTimeout(AppError):
    """The app did not answer in time."""


class AppProcess:
    """One app server process on 127.0.0.1:port, with the last lines of its output kept for errors."""

    def __init__(self, command: Sequence[str], *, port: int, ready_path: str, ready_timeout: float,
                 env: Mapping[str, str]) -> None:
        self.command = list(command)
        self.port = port
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        self.env = dict(env)
        self.process: subprocess.Popen | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES_KEPT)

    def start(self) -> None:
        """Start the app and wait (bounded) until the readiness path answers."""
        self.output.clear()
        try:
            ports.check_free(self.port)
        except ports.PortTaken as error:
            raise AppError(str(error)) from None
        try:
            process = self.process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as error:
            raise AppError(f"could not start APP_COMMAND {self.command[0]!r}: {error}") from None
        # Separate pipes so a log filter can tell the app's errors (stderr: console.error, Python
        # tracebacks) from its ordinary output; one tail keeps both, interleaved as they arrived.
        for stream, level, name in ((process.stdout, logging.INFO, "app-stdout"),
                                    (process.stderr, logging.WARNING, "app-stderr")):
            threading.Thread(target=self._pump, args=(stream, level), name=name, daemon=True).start()
        self._wait_ready(process)
        self._check_owner(process)
        log.info("app ready on port %d (pid %d)", self.port, process.pid)

    def _wait_ready(self, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise AppError(f"the app exited with code {code} before it was ready; "
                               f"its output:\n{self.output_tail()}")
            if self._answers():
                return
            time.sleep(0.05)
        self.stop()
        raise AppError(f"the app did not answer GET {self.ready_path} on port {self.port} within "
                       f"{self.ready_timeout:g}s (READY_TIMEOUT); its output:\n{self.output_tail()}")

    def _check_owner(self, process: subprocess.Popen) -> None:
        """The answer to the readiness check must come from our app: a process left on the port
        (another runtime's app, an unrelated server) would otherwise receive our database's writes."""
        owned = ports.owned_by(self.port, process.pid)
        if owned is False:
            self.stop()
            raise AppError(f"port {self.port} is answered by a process this runtime did not start (its own app "
                           f"could not listen there); stop that process or set PORT to a free port. The app's "
                           f"output:\n{self.output_tail()}")
        if owned is None:
            log.debug("cannot tell who listens on port %d here (no /proc); checked only that it was free",
                      self.port)

    def _answers(self) -> bool:
        """Any HTTP answer below 500 on the readiness path means the server is up."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", self.ready_path, headers={"Connection": "close"})
            return connection.getresponse().status < 500
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def _pump(self, stream, level: int) -> None:
        """Forward one of the app's streams to the log (stdout INFO, stderr WARNING), keeping the tail
        for error messages."""
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            self.output.append(line)
            app_log.log(level, "%s", line)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exits_within(self, seconds: float) -> bool:
        """Whether the process has exited or does so shortly: a dying process closes its sockets
        a moment before its exit status is available."""
        if self.process is None:
            return True  # never started: nothing is running
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def output_tail(self) -> str:
        return "\n".join(self.output) or "(no output)"

    def stop(self, timeout: float = 5.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class AppConnection:
    """A kept-alive HTTP/1.1 connection to the app, re-opened when the app has closed it."""

    def __init__(self, port: int, *, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def send(self, request: AppRequest) -> AppResponse:
        """Forward one request. A connection the app closed while idle is retried once on a fresh one."""
        for attempt in (1, 2):
            connection, reused = self._open()
            try:
                self._write(connection, request)
                _ack_promptly(connection)
            except OSError as error:
                self.close()
                if reused and attempt == 1:
                    continue  # the app closed the idle socket before reading anything: safe to resend
                raise AppError(f"could not send the request to the app: {error}") from None
            try:
                response = self._read(connection)
            except PayloadTooLarge:
                self.close()
                raise
            except TimeoutError:
                self.close()
                raise AppTimeout(f"the app did not answer within {self.timeout:g}s (APP_TIMEOUT)") from None
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if reused and attempt == 1 and request.method in _IDEMPOTENT:
                    continue
                raise AppError(f"the app closed the connection without answering: {error!r}") from None
            if connection.sock is None:
                self._connection = None  # closed after this response (Connection: close or oversized body)
            return response
        raise AssertionError("unreachable: the second attempt always returns or raises")

    def _open(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._connection is not None and self._idle_socket_closed():
            self.close()
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            return self._connection, False
        return self._connection, True

    def _idle_socket_closed(self) -> bool:
        """An idle keep-alive socket that is readable has been closed by the app (EOF)."""
        sock = self._connection.sock if self._connection is not None else None
        if sock is None:
            return False
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    @staticmethod
    def _write(connection: http.client.HTTPConnection, request: AppRequest) -> None:
        # skip_host / skip_accept_encoding: the app sees the client's Host and Accept-Encoding, not ours.
        connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
        names = set()
        for name, value in request.headers:
            names.add(name.lower())
            connection.putheader(name, _header_bytes(value))
        if "host" not in names:
            connection.putheader("Host", f"127.0.0.1:{connection.port}")
        connection.endheaders(request.body or None)

    @staticmethod
    def _read(connection: http.client.HTTPConnection) -> AppResponse:
        response = connection.getresponse()
        body = response.read(MAX_PAYLOAD_BYTES + 1)
        if len(body) > MAX_PAYLOAD_BYTES:
            connection.close()  # the rest is never read; this connection cannot be reused
            raise PayloadTooLarge(f"the app's response body exceeds the Function URL limit of {MAX_PAYLOAD_BYTES} "
                                  f"bytes; the request itself was processed")
        if not response.isclosed():
            response.read()  # end of a body exactly at the limit: consume the terminator
        if response.will_close:
            connection.close()
        return AppResponse(status=response.status, headers=tuple(response.getheaders()), body=body)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _ack_promptly(connection: http.client.HTTPConnection) -> None:
    """Acknowledge the app's first response segment at once.

    Many servers (Python's http.server among them) send the headers and the body in two writes
    without TCP_NODELAY: Nagle holds the body back until the headers are acknowledged, and on a
    kept-alive connection Linux delays that ACK by ~40 ms. Quick-ACK mode lapses, so it is
    re-armed before every response (measured: 44 ms -> 0.4 ms per request).
    """
    if hasattr(socket, "TCP_QUICKACK") and connection.sock is not None:
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _header_bytes(value: str) -> bytes:
    """Header values as the client sent them: latin-1 when possible, else the UTF-8 bytes."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def app_environment(base: Mapping[str, str], *, port: int, db_path: str) -> dict[str, str]:
    """The app's environment: the function's, plus where to listen and where its database is."""
    return {**base, "PORT": str(port), "DB_PATH": db_path}

