"""Serve mode: the very same ``Runtime.handle`` behind a local HTTP server.

Each request becomes a Function URL event (as the real front end builds it, including its 6 MB
limit) and each result a real HTTP response. The server is threaded, the Runtime serializes.
SIGTERM or SIGINT stops accepting requests, waits for the one in flight, stops the app and does
the final sync — what the extension does under Lambda, where the runtime never sees a signal.
"""
from __future__ import annotations

import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

from runtime import failures
from runtime.config import ConfigError, from_env
from runtime.core import Runtime
from runtime.events import MAX_PAYLOAD_BYTES, PayloadTooLarge, payload_size
from runtime.function_url import event_from_http, http_from_result
from runtime.replica import Unavailable

log = logging.getLogger(__name__)

_DISCARD_AT_MOST = 4 * MAX_PAYLOAD_BYTES


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], runtime: Runtime) -> None:
        super().__init__(address, _Handler)
        self.runtime = runtime


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't let Nagle hold the body
    server: _Server

    def _forward(self) -> None:
        try:
            body = self._read_body()
        except PayloadTooLarge as error:
            self.close_connection = True  # an unread body must never be parsed as the next request
            self._send(failures.answer(413, cause="request-too-large", request_id=failures.new_request_id(),
                                       detail=str(error)))
            return
        except ValueError as error:
            self.close_connection = True
            self._send(failures.answer(400, cause="bad-request", request_id=failures.new_request_id(),
                                       detail=f"malformed request body: {error}"))
            return
        event = event_from_http(method=self.command, target=self._target(), headers=self.headers.items(),
                                body=body, source_ip=self.client_address[0], protocol=self.request_version,
                                server=(str(self.server.server_address[0]), self.server.server_port))
        size = payload_size(event)
        if size > MAX_PAYLOAD_BYTES:
            # The limit is on the event, as a real Function URL applies it: a binary body travels
            # base64 (a third larger), so a 4.8 MB upload is already over.
            self._send(failures.answer(413, cause="request-too-large", request_id=failures.request_id_of(event),
                                       detail=f"the request's event is {size} bytes (a binary body is sent base64, "
                                              f"a third larger); Function URLs accept at most {MAX_PAYLOAD_BYTES}"))
            return
        self._send(self.server.runtime.handle(event))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward

    def _target(self) -> str:
        """The request target as sent; an absolute-form URI is reduced to its path and query."""
        if self.path.startswith(("http://", "https://")):
            rest = self.path.split("://", 1)[1]
            return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return self.path

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_PAYLOAD_BYTES:
            self._discard(length)
            raise PayloadTooLarge(f"request body is {length} bytes; Function URLs accept at most {MAX_PAYLOAD_BYTES}")
        return self.rfile.read(length) if length else b""

    def _discard(self, length: int) -> None:
        """Read and drop a moderately oversized body, so a client still sending it gets the 413
        instead of a broken pipe; anything larger is cut off by closing the connection."""
        if length > _DISCARD_AT_MOST:
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(8192).strip():
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_PAYLOAD_BYTES:
                raise PayloadTooLarge(f"request body exceeds {MAX_PAYLOAD_BYTES} bytes, the Function URL limit")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _send(self, result: Mapping[str, Any]) -> None:
        status, headers, body = http_from_result(result)
        self.send_response_only(status)
        if not any(name.lower() == "date" for name, _ in headers):
            self.send_header("Date", self.date_time_string())
        length = str(len(body))
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
            elif self.command == "HEAD":
                length = value  # a HEAD answer has no body but tells the length a GET would have
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug(format, *args)  # the Runtime logs every request already


def serve(*, host: str, port: int) -> int:
    """Run until SIGTERM/SIGINT; exit status 0 after the final sync, 2 on bad configuration."""
    try:
        config = from_env()
    except ConfigError as error:
        log.error("cannot serve: %s", error)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before the cold start, so no signal is ever missed
        signal.signal(signum, lambda *_: stop.set())
    runtime = Runtime(config)
    try:
        runtime.warm_up()
    except Unavailable as error:
        log.error("cold start failed; requests will answer 503 and retry it: %s", error)
    server = _Server((host, port), runtime)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True).start()
    log.info("serving on http://%s:%d (database s3://%s/%s at %s)", host, server.server_port,
             config.bucket, config.key, config.db_path)
    while not stop.wait(0.5):
        pass
    log.info("stopping: waiting for the request in flight, then the final sync")
    server.shutdown()
    server.server_close()
    runtime.shutdown()
    log.info("stopped")
    return 0
