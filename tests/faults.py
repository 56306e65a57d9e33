"""A fault-injection proxy between the CLI and the moto server, for tests and bench/fault_matrix.py.

It listens on 127.0.0.1 only, forwards every request to a loopback emulator, and, when a
rule matches the request's service and operation, answers for the emulator instead:
throttling in the service's own error shape, a 5xx, a connection reset before the request
is forwarded, a reset after the emulator performed it (the lost response), or latency
before or after forwarding. Everything is bounded: at most MAX_DELAY seconds of latency,
socket timeouts on both sides, and stop() ends every delay at once.

The service comes from the SigV4 credential scope in the Authorization header; the operation
from X-Amz-Target (JSON protocols: ECR), Action= (query protocols: IAM, STS), or the request's
method and path matched against botocore's own model of the service (REST: S3, Lambda).
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.loaders
import botocore.session

LOOPBACK = "127.0.0.1"
MAX_DELAY = 30.0
UPSTREAM_TIMEOUT = 30.0
FAULTS = ("throttle", "server_error", "reset_before", "reset_after", "latency", "hold_after")
# What AWS answers a second create of a URL config or a statement id that moto accepts.
CONFLICT = ("ResourceConflictException", 409)
REST_SERVICES = ("s3", "lambda")


# --- which operation a request is -------------------------------------------------------

@lru_cache(maxsize=None)
def _rest_routes(service: str) -> tuple[tuple, ...]:
    """(method, path regex, query keys, headers, specificity, operation) from botocore's model:
    the literal query keys of the requestUri and the required querystring and header members
    (S3's ListParts is GET /{Bucket}/{Key+} with uploadId, GetObject without)."""
    session = botocore.session.get_session()
    # A loader of its own: the shared one (tests/botocore_models.py) holds the models as the
    # clients left them, and an S3 client strips "/{Bucket}" from each requestUri it has sent.
    session.register_component("data_loader", botocore.loaders.create_loader())
    model = session.get_service_model(service)
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        path, _, query = operation.http["requestUri"].partition("?")
        keys = {part.split("=", 1)[0] for part in query.split("&") if part} | _required(operation, "querystring")
        headers = {name.lower() for name in _required(operation, "header")}
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(path))   # {Key+}: any rest of the path
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)            # {Bucket}: one segment
        literal = len(re.sub(r"\{[^}]+\}", "", path))
        specificity = (len(keys) + len(headers)) * 1000 + literal
        routes.append((operation.http["method"], re.compile(f"^{pattern}/?$"), frozenset(keys),
                       frozenset(headers), specificity, name))
    return tuple(routes)


def _required(operation, location: str) -> set[str]:
    """The wire names of the operation's required input members sent in `location`."""
    shape = operation.input_shape
    if shape is None:
        return set()
    members = (shape.members[name].serialization for name in shape.required_members)
    return {m["name"] for m in members if m.get("location") == location}


def rest_operation(service: str, method: str, path: str, query: str, headers=None) -> str:
    """The botocore operation a REST request is: the most specific route that matches."""
    keys = set(parse_qs(query, keep_blank_values=True))
    sent = {name.lower() for name in (headers or {}).keys()}
    matches = [(specificity, name) for verb, regex, needed, needed_headers, specificity, name in _rest_routes(service)
               if verb == method and regex.match(unquote(path) or "/") and needed <= keys and needed_headers <= sent]
    return max(matches)[1] if matches else f"{method} {path}"


def service_of(headers) -> str:
    scope = re.search(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request", headers.get("Authorization", ""))
    return scope.group(1) if scope else "unknown"


def operation_of(service: str, method: str, target: str, headers, body: bytes) -> str:
    if headers.get("X-Amz-Target"):
        return headers["X-Amz-Target"].rpartition(".")[2]
    path, _, query = target.partition("?")
    if service in REST_SERVICES:
        return rest_operation(service, method, path, query, headers)
    form = parse_qs(query)
    if "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        form.update(parse_qs(body.decode("utf-8", "replace")))
    return form.get("Action", [f"{method} {path}"])[0]


# --- what a fault answers -----------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict
    body: bytes


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def error_reply(service: str, *, code: str, message: str, status: int) -> Reply:
    """An error as `service` itself sends one: S3's bare <Error>, the query protocols'
    <ErrorResponse>, ECR's JSON __type, Lambda's x-amzn-ErrorType header."""
    request_id = str(uuid.uuid4())
    if service == "s3":
        return Reply(status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, _xml(
            f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"))
    if service in ("iam", "sts"):
        namespace = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/",
                     "sts": "https://sts.amazonaws.com/doc/2011-06-15/"}[service]
        return Reply(status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, _xml(
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"))
    if service == "lambda":
        return Reply(status, {"Content-Type": "application/json", "x-amzn-ErrorType": code,
                              "x-amzn-RequestId": request_id},
                     json.dumps({"Type": "User", "message": message}).encode())
    return Reply(status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id},
                 json.dumps({"__type": code, "message": message}).encode())


THROTTLE = {  # service: (code, status) as AWS throttles it
    "s3": ("SlowDown", 503), "iam": ("Throttling", 400), "sts": ("Throttling", 400),
    "ecr": ("ThrottlingException", 400), "lambda": ("TooManyRequestsException", 429),
}
SERVER_ERROR = {"s3": "InternalError", "iam": "ServiceFailure", "sts": "InternalFailure",
                "ecr": "ServerException", "lambda": "ServiceException"}


def throttle_reply(service: str) -> Reply:
    code, status = THROTTLE.get(service, ("ThrottlingException", 400))
    return error_reply(service, code=code, message="Rate exceeded", status=status)


def server_error_reply(service: str, status: int) -> Reply:
    return error_reply(service, code=SERVER_ERROR.get(service, "InternalError"),
                       message="We encountered an internal error. Please try again.", status=status)


# --- rules ----------------------------------------------------------------------------------

@dataclass
class Rule:
    """Inject `fault` into requests of `service` (None: any) and `operation` (None: any), the
    first `times` that match after `skip` matching ones have passed untouched. Rules are asked
    in the order added and the first to claim a request takes it: a rule counts only the
    requests no earlier rule claimed. Only requests
    whose User-Agent holds `agent` count: by default the tool's own, so that the fake docker,
    which also reaches the emulator through the proxy, is left alone. contains: a text the
    request's path or body must hold (which object a PutObject writes, which statement id).
    status: for server_error (500 or 503); delay: seconds, for latency and hold_after.
    refuse_retry: (code, status) the emulator should have answered the retry of a reset_after
    with but does not (moto accepts a second CreateFunctionUrlConfig, and a second AddPermission
    with the same statement id, where AWS says ResourceConflictException): the proxy answers it
    so, in the service's shape, without forwarding.
    hit is set when the fault first fires; cancel() ends its delays at once, and a request
    still held before forwarding is then dropped (reset), never forwarded late."""
    fault: str
    service: str | None = None
    operation: str | None = None
    times: int = 1
    skip: int = 0
    status: int = 500
    delay: float = 1.0
    agent: str | None = "canvas-reconcile/"
    contains: str | None = None
    refuse_retry: tuple[str, int] | None = None
    seen: int = 0
    refused: int = 0
    fired: int = 0
    hit: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {', '.join(FAULTS)}")
        self.delay = min(self.delay, MAX_DELAY)

    def cancel(self) -> None:
        self.cancelled.set()

    def claims(self, service: str, operation: str, agent: str, text: str = "") -> str | None:
        """The fault this request gets, or None (counted either way): "refuse" is the request
        right after a reset_after's last firing (its retry) when refuse_retry is set."""
        if self.service not in (None, service) or self.operation not in (None, operation):
            return None
        if (self.agent and self.agent not in agent) or (self.contains and self.contains not in text):
            return None
        self.seen += 1
        if self.seen <= self.skip:
            return None
        if self.fired >= self.times:
            if self.refuse_retry and not self.refused:
                self.refused += 1
                return "refuse"
            return None
        self.fired += 1
        self.hit.set()
        return self.fault


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    fault: str | None


# --- the proxy ------------------------------------------------------------------------------

class FaultProxy:
    """The proxy as a context manager: `with FaultProxy(moto_url) as proxy: proxy.url`."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        if parts.hostname not in (LOOPBACK, "localhost"):
            raise ValueError(f"the fault proxy forwards to a loopback emulator only, not {upstream}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def add(self, fault: str, **how) -> Rule:
        rule = Rule(fault, **how)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.calls.clear()

    def operations(self, fault: str | None = None) -> list[tuple[str, str]]:
        with self._lock:
            return [(c.service, c.operation) for c in self.calls if fault is None or c.fault == fault]

    def decide(self, service: str, operation: str, agent: str, text: str) -> tuple[Rule | None, str | None]:
        """The rule that claims this request and the fault it gets (None, None: forward it)."""
        with self._lock:
            for rule in self.rules:
                fault = rule.claims(service, operation, agent, text)
                if fault:
                    break
            else:
                rule = fault = None
            self.calls.append(Call(service, operation, fault))
            return rule, fault

    def start(self) -> "FaultProxy":
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = _Server((LOOPBACK, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def pause(self, rule: Rule) -> bool:
        """Wait out the rule's delay; False when it was cut short (the rule cancelled, the proxy stopping)."""
        deadline = time.monotonic() + rule.delay
        while time.monotonic() < deadline:
            if rule.cancelled.is_set() or self.stopping.wait(0.05):
                return False
        return True

    def stop(self) -> None:
        self.stopping.set()  # ends every delay now
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        pass  # a client that went away (killed, or reset by us) is expected here


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pooled connections expect
    timeout = UPSTREAM_TIMEOUT

    def log_message(self, *args) -> None:
        pass

    def _handle(self) -> None:
        body = self._read_body()
        service = service_of(self.headers)
        operation = operation_of(service, self.command, self.path, self.headers, body)
        text = unquote(self.path) + "\n" + body.decode("utf-8", "replace")
        rule, fault = self.proxy.decide(service, operation, self.headers.get("User-Agent", ""), text)
        if fault == "refuse":
            code, status = rule.refuse_retry
            return self._send(error_reply(service, code=code, message=f"{operation}: the resource already exists",
                                          status=status))
        if fault == "reset_before":
            return self._reset()
        if fault == "throttle":
            return self._send(throttle_reply(service))
        if fault == "server_error":
            return self._send(server_error_reply(service, rule.status))
        if fault == "latency" and not self.proxy.pause(rule):
            return self._reset()
        reply = self._forward(body)
        if fault == "reset_after":
            return self._reset()
        if fault == "hold_after" and not self.proxy.pause(rule):
            return self._reset()
        self._send(reply)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> Reply:
        host, port = self.proxy.upstream
        connection = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or body:
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in ("transfer-encoding", "connection")}
            if self.command != "HEAD":
                kept = {k: v for k, v in kept.items() if k.lower() != "content-length"}
                kept["Content-Length"] = str(len(data))
            return Reply(answer.status, kept, data)
        finally:
            connection.close()

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if self.command != "HEAD" and not any(k.lower() == "content-length" for k in headers):
            headers["Content-Length"] = str(len(reply.body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()

    def _reset(self) -> None:
        """Close with RST (SO_LINGER 0): the client sees a reset, not a clean end."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
