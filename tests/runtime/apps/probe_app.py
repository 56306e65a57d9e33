"""A test app (standard library only) that exposes what the runtime forwarded and misbehaves on request.

    GET  /healthz            readiness
    ANY  /echo...            JSON: method, raw request target, header lines, body (base64)
    GET  /binary             1 KiB of every byte value, application/octet-stream
    GET  /gzip               gzip-compressed text (Content-Encoding: gzip)
    GET  /cookies            two Set-Cookie headers and a repeated X-Multi header
    GET  /status/<n>         answers with status n
    GET  /big/<n>            n bytes of text (HEAD: the same Content-Length, no body)
    GET  /media?type=T       a small text body served as Content-Type T
    GET  /notes              JSON list of note texts
    GET  /touch              a read that writes (a visit counter), like session or view tracking
    POST /notes              body text -> 201, stored as a note
    POST /gate               stores the note, then waits for $GATE_DIR/release before answering
                             (/gate?nowrite: only waits, the database is not touched)
    POST /crash              stores nothing; prints a line and exits with status 3 without answering
    GET  /garbage            prints a line, answers bytes that are not HTTP and closes the connection
    GET  /stderr?text=T      prints T to stdout and "err: T" to stderr, answers 200
Like real app servers it keeps one long-lived SQLite connection, in WAL mode, at $DB_PATH.
"""
import base64
import gzip
import json
import os
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB = sqlite3.connect(os.environ["DB_PATH"], isolation_level=None, check_same_thread=False)
DB.execute("PRAGMA busy_timeout = 10000")
DB.execute("PRAGMA journal_mode = WAL")
DB.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
DB.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at REAL NOT NULL)")
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/healthz":
            return self._send(200, b"ok", [("Content-Type", "text/plain")])
        if path.startswith("/echo"):
            echo = {"method": self.command, "target": self.path, "headers": [[k, v] for k, v in self.headers.items()],
                    "body": base64.b64encode(body).decode()}
            return self._send(200, json.dumps(echo).encode(), [("Content-Type", "application/json")])
        if path == "/binary":
            return self._send(200, bytes(range(256)) * 4, [("Content-Type", "application/octet-stream")])
        if path == "/gzip":
            return self._send(200, gzip.compress(b"compressed text " * 50),
                              [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")])
        if path == "/cookies":
            return self._send(200, b"cookies", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1; Path=/"),
                                                ("Set-Cookie", "b=2; HttpOnly"), ("X-Multi", "one"),
                                                ("X-Multi", "two")])
        if path.startswith("/status/"):
            return self._send(int(path.rsplit("/", 1)[1]), b"status", [("Content-Type", "text/plain")])
        if path == "/media":
            media = self.path.split("type=", 1)[1].replace("%2B", "+").replace("%2F", "/")
            return self._send(200, b"key: value\n", [("Content-Type", media)])
        if path.startswith("/big/"):
            return self._send(200, b"x" * int(path.rsplit("/", 1)[1]), [("Content-Type", "text/plain")])
        if path == "/notes" and self.command == "GET":
            with LOCK:
                notes = [row[0] for row in DB.execute("SELECT text FROM notes ORDER BY id")]
            return self._send(200, json.dumps(notes).encode(), [("Content-Type", "application/json")])
        if path == "/touch":
            with LOCK:
                DB.execute("INSERT INTO visits (at) VALUES (?)", (time.time(),))
            return self._send(200, b"touched", [("Content-Type", "text/plain")])
        if path in ("/notes", "/gate") and self.command == "POST":
            if not self.path.endswith("?nowrite"):
                with LOCK:
                    DB.execute("INSERT INTO notes (text) VALUES (?)", (body.decode(),))
            if path == "/gate":
                self._wait_for_release()
            return self._send(201, body, [("Content-Type", "text/plain")])
        if path == "/garbage":
            print("probe app: answering garbage on purpose", flush=True)
            self.wfile.write(b"this is not HTTP at all\r\n\r\n")
            self.close_connection = True
            return None
        if path == "/stderr":
            text = self.path.split("text=", 1)[1]
            print(text, flush=True)
            print(f"err: {text}", file=sys.stderr, flush=True)
            return self._send(200, b"printed", [("Content-Type", "text/plain")])
        if path == "/crash":
            print("probe app: crashing on purpose", flush=True)
            os._exit(3)
        return self._send(404, b"not found", [("Content-Type", "text/plain")])

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _route

    def _wait_for_release(self) -> None:
        gate = os.environ["GATE_DIR"]
        open(os.path.join(gate, "entered"), "w").close()
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(gate, "release")) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _send(self, status: int, body: bytes, headers: list) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    print("probe app listening", flush=True)
    server.serve_forever()
