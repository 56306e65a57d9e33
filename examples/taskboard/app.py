"""Taskboard: a small task-management web app, standard library only.

The sample app behind the runtime (and its tests); examples/astro-taskboard is the same app in
Astro, and the runtime's end-to-end tests drive both. It listens on $PORT, keeps its SQLite
database at $DB_PATH in WAL mode, and holds one long-lived connection, as real app servers do.

    GET    /                 HTML page listing the tasks, with a form to add one
    GET    /tasks            301 to / (the page's old address)
    GET    /style.css, /favicon.png   static files from static/
    GET    /healthz          readiness probe; never touches the database
    GET    /api/tasks        200, JSON array of {"id", "title", "done"}
    POST   /api/tasks        JSON {"title"} -> 201 and the task; an HTML form post -> 303 to /,
                             with cookies "flash" (shown once by the page, then cleared) and
                             "last_task" (the new task's id)
    GET    /api/tasks/<id>   200 and the task, or 404
    PATCH  /api/tasks/<id>   JSON {"title"?, "done"?} -> 200 and the task, or 404
    DELETE /api/tasks/<id>   204, or 404
"""
from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SCHEMA = """CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
)"""
MAX_TITLE = 500
TASK_PATH = re.compile(r"^/api/tasks/(\d+)$")
STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"/style.css": "text/css; charset=utf-8", "/favicon.png": "image/png"}
FLASH_CLEARED = "flash=; Path=/; Max-Age=0"


class BadRequest(Exception):
    pass


class Tasks:
    """The task table, behind one connection shared by all request threads (serialized by a lock)."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()
        self.connection.execute("PRAGMA busy_timeout = 10000")
        # No-ops on a database that is already WAL with the table present, so a restored
        # database is not modified merely by starting the app.
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute(SCHEMA)

    def all(self) -> list[dict]:
        with self.lock:
            rows = self.connection.execute("SELECT id, title, done FROM tasks ORDER BY id").fetchall()
        return [_task(row) for row in rows]

    def get(self, task_id: int) -> dict | None:
        with self.lock:
            row = self.connection.execute("SELECT id, title, done FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _task(row) if row else None

    def add(self, title: str) -> dict:
        with self.lock:
            cursor = self.connection.execute("INSERT INTO tasks (title) VALUES (?)", (title,))
            return {"id": cursor.lastrowid, "title": title, "done": False}

    def update(self, task_id: int, changes: dict) -> dict | None:
        with self.lock:
            if "title" in changes:
                self.connection.execute("UPDATE tasks SET title = ? WHERE id = ?", (changes["title"], task_id))
            if "done" in changes:
                self.connection.execute("UPDATE tasks SET done = ? WHERE id = ?", (int(changes["done"]), task_id))
        return self.get(task_id)

    def delete(self, task_id: int) -> bool:
        with self.lock:
            return self.connection.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount > 0


def _task(row: tuple) -> dict:
    return {"id": row[0], "title": row[1], "done": bool(row[2])}


def _title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("title must be a non-empty string")
    if len(value) > MAX_TITLE:
        raise BadRequest(f"title must be at most {MAX_TITLE} characters")
    return value.strip()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the runtime proxies over one long-lived connection
    disable_nagle_algorithm = True  # headers and body are two writes; Nagle would hold the body back
    server_version = "taskboard"
    tasks: Tasks

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/":
            flash = "flash=added" in (self.headers.get("Cookie") or "").replace(" ", "").split(";")
            self._send(200, _page(self.tasks.all(), flash=flash).encode("utf-8"), "text/html; charset=utf-8",
                       extra=[("Set-Cookie", FLASH_CLEARED)] if flash else None)
        elif path == "/tasks":
            self._send(301, b"", "text/plain", extra=[("Location", "/")])
        elif path in STATIC_FILES:
            self._send(200, (STATIC / path.lstrip("/")).read_bytes(), STATIC_FILES[path])
        elif path == "/api/tasks":
            self._json(200, self.tasks.all())
        elif match := TASK_PATH.match(path):
            task = self.tasks.get(int(match.group(1)))
            self._json(200, task) if task else self._error(404, "no such task")
        else:
            self._error(404, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/api/tasks":
            return self._error(404, "not found")
        try:
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                form = parse_qs(self._body().decode("utf-8"))
                added = self.tasks.add(_title((form.get("title") or [""])[0]))
                return self._send(303, b"", "text/plain", extra=[
                    ("Location", "/"), ("Set-Cookie", "flash=added; Path=/; HttpOnly; SameSite=Lax"),
                    ("Set-Cookie", f"last_task={added['id']}; Path=/; SameSite=Lax")])
            task = self.tasks.add(_title(self._json_body().get("title")))
        except BadRequest as error:
            return self._error(400, str(error))
        self._json(201, task, extra=[("Location", f"/api/tasks/{task['id']}")])

    def do_PATCH(self) -> None:
        match = TASK_PATH.match(urlsplit(self.path).path)
        if not match:
            return self._error(404, "not found")
        try:
            body = self._json_body()
            changes = {}
            if "title" in body:
                changes["title"] = _title(body["title"])
            if "done" in body:
                if not isinstance(body["done"], bool):
                    raise BadRequest("done must be true or false")
                changes["done"] = body["done"]
        except BadRequest as error:
            return self._error(400, str(error))
        task = self.tasks.update(int(match.group(1)), changes)
        self._json(200, task) if task else self._error(404, "no such task")

    def do_DELETE(self) -> None:
        match = TASK_PATH.match(urlsplit(self.path).path)
        if not match:
            return self._error(404, "not found")
        if self.tasks.delete(int(match.group(1))):
            self._send(204, b"", None)
        else:
            self._error(404, "no such task")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict:
        try:
            body = json.loads(self._body() or b"{}")
        except ValueError:
            raise BadRequest("the body must be JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def _json(self, status: int, value: object, extra: list[tuple[str, str]] | None = None) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json", extra=extra)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _send(self, status: int, body: bytes, content_type: str | None,
              extra: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        if content_type and status != 204:
            self.send_header("Content-Type", content_type)
        for name, value in extra or ():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the runtime logs each request; query strings stay out of the logs


def _page(tasks: list[dict], *, flash: bool = False) -> str:
    items = "\n".join(
        f'<li data-id="{task["id"]}"><label><input type="checkbox" class="done"'
        f'{" checked" if task["done"] else ""}> {html.escape(task["title"])}</label> '
        f'<button class="delete" type="button">delete</button></li>'
        for task in tasks
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Taskboard</title>
<link rel="stylesheet" href="/style.css"><link rel="icon" href="/favicon.png" type="image/png"></head>
<body>
<h1>Taskboard</h1>
{'<p class="flash">Task added.</p>' if flash else ""}
<form method="post" action="/api/tasks">
  <input name="title" maxlength="{MAX_TITLE}" required placeholder="New task">
  <button type="submit">Add</button>
</form>
<ul id="tasks">
{items or "<li><em>No tasks yet.</em></li>"}
</ul>
<script>
document.getElementById("tasks").addEventListener("click", async (event) => {{
  const item = event.target.closest("li[data-id]");
  if (!item) return;
  const url = "/api/tasks/" + item.dataset.id;
  if (event.target.classList.contains("delete")) {{
    await fetch(url, {{method: "DELETE"}});
  }} else if (event.target.classList.contains("done")) {{
    await fetch(url, {{method: "PATCH", headers: {{"Content-Type": "application/json"}},
                       body: JSON.stringify({{done: event.target.checked}})}});
  }} else return;
  location.reload();
}});
</script>
</body></html>
"""


def main() -> None:
    Handler.tasks = Tasks(os.environ.get("DB_PATH", "taskboard.db"))
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler)
    server.daemon_threads = True
    print(f"taskboard listening on 127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
