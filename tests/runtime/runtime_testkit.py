"""Test kit for the runtime: the runtime as a subprocess, the bucket as a test sees it, a fake
Extensions API. Imported by tests/runtime/conftest.py and the tests (pytest puts this directory
on sys.path); its name is unique so it cannot collide with other test directories."""
from __future__ import annotations

import base64
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[2]
TASKBOARD = REPO / "examples" / "taskboard" / "app.py"
PROBE_APP = Path(__file__).resolve().parent / "apps" / "probe_app.py"
EXTENSION = REPO / "runtime" / "extensions" / "canvas-db-sync"
KEY = "database/taskManagement.db"
TASKS_SCHEMA = ("CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0)")


def aws_env(endpoint: str) -> dict[str, str]:
    """Fake credentials and the moto endpoint, explicitly (fixtures wider than a test cannot rely on
    the autouse credential fixture having run)."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-west-2", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_ENDPOINT_URL": endpoint}


def runtime_environment(*, endpoint: str, bucket: str, home: Path, app: Path = TASKBOARD,
                        **overrides: str) -> dict[str, str]:
    """Everything a runtime subprocess needs: S3 from moto, DB_PATH under ``home``, a free app port."""
    env = {key: value for key, value in os.environ.items() if key != "AWS_PROFILE"}
    env.update(aws_env(endpoint))
    env.update({"S3_BUCKET_NAME": bucket, "S3_DB_KEY": KEY, "DB_PATH": str(home / "db.sqlite"),
                "APP_COMMAND": f"{sys.executable} {app}", "PORT": str(free_port()), "READY_PATH": "/healthz",
                "SYNC_INTERVAL": "30", "READY_TIMEOUT": "20", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def held_past_app_timeout(runtime, gate_dir: str, method: str, path: str, body: str):
    """The runtime's answer to a request the probe app holds at its gate (longer than
    APP_TIMEOUT); the gate is released afterwards, so the app finishes what it was doing."""
    result = {}
    request = threading.Thread(target=lambda: result.update(response=runtime.request(method, path, body)))
    request.start()
    request.join(30)
    open(os.path.join(gate_dir, "release"), "w").close()
    return result["response"]


def generic_id(response, status: int, *never: str) -> str:
    """The body is exactly the status line and a request id; returns the id."""
    assert response.status == status
    body = response.json()
    assert body == {"error": f"{status} {HTTPStatus(status).phrase}", "requestId": body["requestId"]}
    for secret in never:
        assert secret not in response.body.decode()
    return body["requestId"]


def error_line(log: str, *, status: int, request_id: str, cause: str) -> str:
    """The one error line for this request; also: no other request's 5xx line exists."""
    lines = [line for line in log.splitlines() if "canvas-runtime " in line]
    assert len(lines) == 1, lines
    assert f"ERROR runtime.failures: canvas-runtime {status} request={request_id} cause={cause}: " in lines[0]
    return lines[0]


def function_url_event(method, path, body=None, query="", cookies=None):
    """A payload-2.0 event as a Function URL sends it (JSON body, base64 as the front end does)."""
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
             "headers": {"host": "abc.lambda-url.us-west-2.on.aws", "content-type": "application/json"},
             "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                         "sourceIp": "203.0.113.9", "userAgent": "test"}},
             "isBase64Encoded": False}
    if body is not None:
        event["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        event["isBase64Encoded"] = True
    if cookies:
        event["cookies"] = cookies
    return event


class S3:
    """The bucket as a test sees it: versioned, so every successful write is countable."""

    def __init__(self, endpoint: str, bucket: str, tmp: Path) -> None:
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self.bucket, self.key, self._tmp = bucket, KEY, tmp
        self.client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        self.client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self._downloads = 0

    def delete_bucket(self) -> None:
        listing = self.client.list_object_versions(Bucket=self.bucket)
        for version in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            self.client.delete_object(Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"])
        self.client.delete_bucket(Bucket=self.bucket)

    def etag(self) -> str | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=KEY)["ETag"]
        except self.client.exceptions.ClientError:
            return None

    def writes(self) -> int:
        """How many versions of the key exist: one per successful PUT."""
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=KEY)
        return len([v for v in listing.get("Versions", []) if v["Key"] == KEY])

    def raw(self) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=KEY)["Body"].read()

    def download(self) -> Path:
        """The current state as one file: the object itself in the single-object layout, else the
        manifest's base with its log applied (runtime.remote, as `reconcile db pull` does)."""
        self._downloads += 1
        path = self._tmp / f"s3-copy-{self._downloads}.db"
        raw = self.raw()
        if raw.startswith(b"SQLite format 3\x00") or not raw:
            path.write_bytes(raw)
            return path
        from runtime import layout, remote
        from runtime.store import ObjectStore
        store = ObjectStore(bucket=self.bucket, key=KEY, multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                            client=self.client)
        try:
            remote.materialize(store, layout.decode_manifest(raw, where=KEY), str(path))
        finally:
            store.close()
        return path

    def manifest(self):
        from runtime import layout
        return layout.decode_manifest(self.raw(), where=KEY)

    def query(self, sql: str) -> list[tuple]:
        connection = sqlite3.connect(self.download())
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    def integrity(self) -> str:
        return self.query("PRAGMA integrity_check")[0][0]

    def put_file(self, path: Path) -> str:
        return self.client.put_object(Bucket=self.bucket, Key=KEY, Body=path.read_bytes())["ETag"]

    def put_bytes(self, data: bytes) -> str:
        return self.client.put_object(Bucket=self.bucket, Key=KEY, Body=data)["ETag"]

    def _store(self):
        from runtime.store import ObjectStore
        return ObjectStore(bucket=self.bucket, key=KEY, multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                           client=self.client)

    def put_database(self, path: Path, *, writer: str = "test-seed") -> str:
        """Commit ``path`` as the database's new state, as an environment would (a conditional new
        base in the manifest layout); returns the manifest's ETag."""
        from runtime import remote
        store = self._store()
        try:
            try:
                head = remote.read_head(store, None)
            except remote.Corrupt:  # a broken object: replaced, as a person restoring it would
                head = remote.Head(etag=self.etag())
            if head.legacy is not None:
                head = remote.Head(etag=head.etag)
            txid = head.manifest.txid + 1 if head.manifest else 1
            committed = remote.commit_base(store, head, str(path), txid=txid, writer=writer)
        finally:
            store.close()
        assert committed.etag is not None
        return committed.etag

    def seed_legacy_tasks(self, titles: list[str]) -> str:
        """The seed guide's layout: the database as one plain object at the key."""
        return self.put_file(self._tasks_file(titles))

    def seed_tasks(self, titles: list[str]) -> str:
        """Commit a taskboard database holding ``titles``, as another environment would have left it."""
        return self.put_database(self._tasks_file(titles))

    def _tasks_file(self, titles: list[str]) -> Path:
        """Upload a taskboard database holding ``titles``, as another environment would have left it."""
        path = self._tmp / f"seed-{len(titles)}-{time.monotonic_ns()}.db"
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(TASKS_SCHEMA)
        connection.executemany("INSERT INTO tasks (title) VALUES (?)", [(t,) for t in titles])
        connection.commit()
        connection.close()
        return path

    def edit(self, sql: str, params: tuple = ()) -> str:
        """Another writer: read the current state, change it, and commit it as that writer would —
        a plain upload in the single-object layout, a conditional new base in the manifest layout."""
        raw = self.raw()
        path = self.download()
        connection = sqlite3.connect(path)
        connection.execute(sql, params)
        connection.commit()
        connection.close()
        if raw.startswith(b"SQLite format 3\x00") or not raw:
            return self.put_file(path)
        return self.put_database(path, writer="test-editor")


class RuntimeProcess:
    """``python -m runtime serve --port 0`` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.db_path = Path(env["DB_PATH"])
        self.port: int | None = None
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "runtime", "serve", "--port", "0"], cwd=REPO,
                                        env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        match = wait_for(self._serving, timeout=30, what=f"the runtime to serve (log: {log_path})")
        self.port = int(match.group(1))

    def _serving(self):
        if self.process.poll() is not None:
            raise AssertionError(f"runtime exited with {self.process.returncode}:\n{self.log()}")
        return re.search(r"serving on http://127\.0\.0\.1:(\d+)", self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, target: str, body: bytes | str | None = None,
                headers: list[tuple[str, str]] | dict | None = None, timeout: float = 30) -> Response:
        """One request with the target sent byte for byte as given (no client-side re-encoding)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            items = headers.items() if isinstance(headers, dict) else (headers or [])
            data = body.encode() if isinstance(body, str) else body
            for name, value in items:
                connection.putheader(name, value)
            if data is not None:
                connection.putheader("Content-Length", str(len(data)))
            connection.endheaders(data)
            response = connection.getresponse()
            return Response(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def post_json(self, target: str, value) -> Response:
        return self.request("POST", target, json.dumps(value), {"Content-Type": "application/json"})

    def app_pid(self) -> int:
        found = re.findall(r"app ready on port \d+ \(pid (\d+)\)", self.log())
        return int(found[-1])

    def kill9(self) -> None:
        """Kill the whole process group (runtime and app) the hard way, as a crash or a frozen sandbox would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, signum: int = signal.SIGTERM, *, group: bool = False) -> int:
        (os.killpg if group else os.kill)(self.process.pid, signum)
        return self.process.wait(30)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        else:  # the app is in the runtime's group and may have outlived it
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()


@dataclass
class FakeExtensionsApi:
    """Just enough of the Lambda Extensions API: register, then /event/next blocks until ``shutdown()``."""

    registrations: list[dict] = field(default_factory=list)
    next_calls: list[dict] = field(default_factory=list)
    _release: threading.Event = field(default_factory=threading.Event)
    address: str = ""
    reason: str = "spindown"
    _server: ThreadingHTTPServer | None = None

    def shutdown(self, reason: str = "spindown") -> None:
        self.reason = reason
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def serve_fake_extensions_api() -> FakeExtensionsApi:
    """Start the fake on 127.0.0.1 and a free port; `stop()` ends it."""
    api = FakeExtensionsApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/2020-01-01/extension/register":
                return self._answer(404, {})
            api.registrations.append({"headers": dict(self.headers.items()), "body": json.loads(body)})
            self._answer(200, {"functionName": "test", "functionVersion": "$LATEST", "handler": "x"},
                         {"Lambda-Extension-Identifier": "ext-id-1234"})

        def do_GET(self):
            if self.path != "/2020-01-01/extension/event/next":
                return self._answer(404, {})
            api.next_calls.append({"headers": dict(self.headers.items())})
            api._release.wait(60)
            self._answer(200, {"eventType": "SHUTDOWN", "shutdownReason": api.reason,
                               "deadlineMs": int(time.time() * 1000) + 2000})

        def _answer(self, status, body, headers=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api.address, api._server = f"127.0.0.1:{server.server_port}", server
    return api


def start_extension(env: dict[str, str], api: FakeExtensionsApi, log_path: Path) -> subprocess.Popen:
    """Run the extension the way Lambda does: the executable from /opt/extensions, named by its file name."""
    bin_dir = Path(sys.executable).parent
    environment = {**env, "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": str(REPO),
                   "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.Popen([str(EXTENSION)], env=environment, stdout=open(log_path, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def sqlite_rows(path: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()



# --- The sample apps the end-to-end suite runs (tests/runtime/test_runtime_apps.py) -------------

ASTRO_APP = REPO / "examples" / "astro-taskboard"
# What a build of the Astro example depends on: dist/ older than any of these is rebuilt.
ASTRO_SOURCES = ("src", "public", "astro.config.mjs", "package.json", "package-lock.json", "tsconfig.json")


class NodeAppUnavailable(Exception):
    """The Astro example cannot run here; the message says what to install."""


# .ci/run starts the tests while `npm ci` is still compiling better-sqlite3 (it uses one of the
# two cores for about a minute) and names a file here that it writes, with npm ci's exit code,
# once node_modules is complete. Where it is unset (the README's command), npm ci already ran.
NPM_CI_DONE = "CANVAS_NPM_CI_DONE"
NPM_CI_WAIT = 900.0


def wait_for_node_modules() -> None:
    """Return once the Astro example's node_modules is complete, as far as this run can know."""
    marker = os.environ.get(NPM_CI_DONE)
    if not marker:
        return
    deadline = time.monotonic() + NPM_CI_WAIT
    while not os.path.exists(marker):
        if time.monotonic() > deadline:
            raise NodeAppUnavailable(f"npm ci did not finish within {NPM_CI_WAIT:.0f}s ({NPM_CI_DONE}={marker})")
        time.sleep(0.5)
    code = Path(marker).read_text().strip()
    if code != "0":
        raise NodeAppUnavailable(f"npm ci --prefix {ASTRO_APP} exited with {code} "
                                 "(.ci/run prints its output after the tests)")


@dataclass(frozen=True)
class SampleApp:
    """One sample app as the suite drives it: how the runtime starts it, where its static files are."""

    name: str
    command: str
    static_dir: Path
    env: dict[str, str] = field(default_factory=dict)


def python_taskboard() -> SampleApp:
    return SampleApp("python", f"{sys.executable} {TASKBOARD}", TASKBOARD.parent / "static")


def astro_taskboard(app_dir: Path = ASTRO_APP, *, lock_dir: Path) -> SampleApp:
    """The Astro example, built first if dist/ is missing or older than its sources (under a lock
    in ``lock_dir``, so xdist's workers build it once)."""
    wait_for_node_modules()
    node = shutil.which("node")
    if node is None:
        raise NodeAppUnavailable("node is not on PATH: install Node.js 20 or 22 (.ci/run does where it is missing)")
    if not (app_dir / "node_modules" / "better-sqlite3" / "build" / "Release" / "better_sqlite3.node").exists():
        raise NodeAppUnavailable(f"{app_dir}/node_modules is missing or incomplete: run `npm ci --prefix {app_dir}` "
                                 "(the README's test command does)")
    entry = app_dir / "dist" / "server" / "entry.mjs"
    with open(lock_dir / "astro-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _older_than_sources(entry, app_dir):
            done = subprocess.run(["npm", "run", "build"], cwd=app_dir, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise NodeAppUnavailable(f"npm run build failed in {app_dir}:\n{done.stdout}\n{done.stderr}")
    return SampleApp("astro", f"{node} {entry}", app_dir / "public", {"HOST": "127.0.0.1"})


def _older_than_sources(built: Path, app_dir: Path) -> bool:
    if not built.exists():
        return True
    newest = 0.0
    for name in ASTRO_SOURCES:
        path = app_dir / name
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        newest = max([newest] + [p.stat().st_mtime for p in files if p.exists()])
    return built.stat().st_mtime < newest


# --- A stand-in Lambda Runtime API for the real awslambdaric (tests/runtime/test_runtime_ric.py) --

RIC_HANDLER = "runtime.handler.handler"


@dataclass
class Invocation:
    request_id: str
    event: dict
    result: dict | None = None    # what the RIC posted to .../response (the handler's return value)
    error: dict | None = None     # what it posted to .../error
    answered: threading.Event = field(default_factory=threading.Event)


class StandInRuntimeApi:
    """The endpoints awslambdaric 4.2.2 calls (its C client for next/response/error, http.client for
    init/error), on 127.0.0.1 and a free port. ``GET .../invocation/next`` blocks until an event is
    queued with ``invoke``; ``on_response(invocation)`` runs inside the /response handler, before the
    202 goes back, i.e. while Lambda would still be holding the caller's answer."""

    PREFIX = "/2018-06-01/runtime"

    def __init__(self, on_response=None) -> None:
        self.on_response = on_response
        self.invocations: dict[str, Invocation] = {}
        self.init_errors: list[dict] = []
        self.callback_errors: list[BaseException] = []
        self._pending: list[Invocation] = []
        self._waiting = 0  # callers blocked in /next right now
        self._cond = threading.Condition()
        self._stopped = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path != f"{api.PREFIX}/invocation/next":
                    return self._answer(404, {"errorType": "NotFound"})
                invocation = api._next()
                if invocation is None:  # stopping: make the worker's poll fail
                    return self._answer(500, {"errorType": "ShuttingDown"})
                body = json.dumps(invocation.event).encode()
                self._answer(200, body, {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-west-2:123456789012:function:ric-test",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    "Content-Type": "application/json"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(api.PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append({"type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                            "body": body.decode(errors="replace")})
                    return self._answer(202, {"status": "OK"})
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    invocation = api.invocations.get(parts[1])
                    if invocation is None:
                        return self._answer(400, {"errorType": "InvalidRequestID"})
                    if parts[2] == "response":
                        invocation.result = json.loads(body)
                        if api.on_response is not None:
                            try:
                                api.on_response(invocation)
                            except BaseException as error:  # reported by the test, not lost in this thread
                                api.callback_errors.append(error)
                    else:
                        invocation.error = {"type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                            "body": body.decode(errors="replace")}
                    invocation.answered.set()
                    return self._answer(202, {"status": "OK"})
                self._answer(404, {"errorType": "NotFound"})

            def _answer(self, status, body, headers=None):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if "Content-Type" not in (headers or {}):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a worker killed at teardown while it polls /next: nothing to report

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self._server.server_port}"

    def _next(self) -> Invocation | None:
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while not self._pending and not self._stopped:
                    self._cond.wait(1)
                return None if self._stopped else self._pending.pop(0)
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def wait_for_pollers(self, count: int, *, timeout: float) -> None:
        """Until ``count`` workers are blocked in /next at once (all initialized, none busy)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting >= count, timeout):
                raise AssertionError(f"{self._waiting} of {count} workers polled /invocation/next "
                                     f"within {timeout}s (init errors: {self.init_errors})")

    def invoke(self, *events: dict) -> list[Invocation]:
        """Queue events at once (one per free worker); the request id is also the event's."""
        queued = []
        with self._cond:
            for event in events:
                request_id = f"ric-{len(self.invocations) + 1}-{time.monotonic_ns() % 10**9}"
                event = {**event, "requestContext": {**event.get("requestContext", {}), "requestId": request_id}}
                invocation = self.invocations[request_id] = Invocation(request_id, event)
                self._pending.append(invocation)
                queued.append(invocation)
            self._cond.notify_all()
        return queued

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


class RicProcess:
    """``python -m awslambdaric runtime.handler.handler``, the image's entry point, in its own process
    group (its forked workers and their apps included), logging to a file."""

    def __init__(self, env: dict[str, str], api: StandInRuntimeApi, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        environment = {**env, "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": str(REPO),
                       "PYTHONPATH": os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "awslambdaric", RIC_HANDLER], cwd=REPO,
                                        env=environment, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cleanup(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._log.close()


# A sitecustomize.py (on PYTHONPATH) that makes the runtime run as it did before it refused
# AWS_LAMBDA_MAX_CONCURRENCY > 1: from_env reports a concurrency of 1 whatever the environment says.
# Only for reproducing the lost write; the runtime itself is not changed.
CONCURRENCY_BYPASS = '''\
import dataclasses
import os

if os.environ.get("CANVAS_TEST_BYPASS_CONCURRENCY_REFUSAL") == "1":
    import runtime.config as _config

    _from_env = _config.from_env

    def from_env(env=None):
        return dataclasses.replace(_from_env(env), max_concurrency=1)

    _config.from_env = from_env
'''
