"""The app's port: a free one when PORT is unset, a refusal when PORT is taken, and the proof that
whatever answers there is the app this runtime started — so a write can never reach another
runtime's app (and from there another database) or an unrelated server."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from runtime_testkit import free_port

from runtime import ports
from runtime.app_process import AppError, AppProcess


class _Foreign(BaseHTTPRequestHandler):
    """An unrelated server that answers everything with 200 and counts what it got."""
    seen: list[str] = []

    def _any(self):
        _Foreign.seen.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"foreign")

    do_GET = do_POST = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def foreign_server():
    _Foreign.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_taken_port_is_refused_and_nothing_reaches_the_server_on_it(s3, start_runtime, foreign_server):
    port = foreign_server.server_port
    runtime = start_runtime(PORT=str(port))
    write = runtime.post_json("/api/tasks", {"title": "must not land elsewhere"})
    assert write.status == 503
    assert f"PORT {port} is already in use by another process" in runtime.log()
    assert not any("/api/tasks" in line for line in _Foreign.seen)
    assert s3.writes() == 0


def test_a_second_runtime_on_the_same_port_never_acknowledges_a_write_into_the_first(s3, start_runtime):
    port = str(free_port())
    first = start_runtime(PORT=port)
    assert first.post_json("/api/tasks", {"title": "first's"}).status == 201
    second = start_runtime(PORT=port, S3_DB_KEY="database/other.db")
    assert second.post_json("/api/tasks", {"title": "meant for other.db"}).status == 503
    assert [t["title"] for t in first.request("GET", "/api/tasks").json()] == ["first's"]


def test_without_port_the_app_gets_a_free_one(s3, runtime_env, start_runtime):
    env = runtime_env()
    del env["PORT"]
    runtime = start_runtime(env=env)
    assert runtime.post_json("/api/tasks", {"title": "x"}).status == 201
    assert "app ready on port" in runtime.log()


def test_owned_by_tells_our_listener_from_anothers(foreign_server):
    if ports.listener_inodes(foreign_server.server_port) is None:
        pytest.fail("/proc/net/tcp is not readable here: the owner check cannot run on this system")
    assert ports.owned_by(foreign_server.server_port, os.getpid()) is True
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert ports.owned_by(foreign_server.server_port, child.pid) is False
    finally:
        child.kill()
        child.wait()


def test_readiness_answered_by_another_process_is_refused(foreign_server, monkeypatch):
    # The moment between the free-port check and the app's bind: another process takes the port,
    # our app cannot listen, and the readiness check is answered — by the wrong process.
    monkeypatch.setattr(ports, "check_free", lambda port: None)
    app = AppProcess([sys.executable, "-c", "import time; time.sleep(30)"], port=foreign_server.server_port,
                     ready_path="/healthz", ready_timeout=5, env=dict(os.environ))
    with pytest.raises(AppError, match="answered by a process this runtime did not start"):
        app.start()
    assert not app.running()  # our own app is stopped, not left behind
