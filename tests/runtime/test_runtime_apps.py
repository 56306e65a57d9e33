"""The runtime end to end with each sample app — the Python taskboard and the same app in Astro
(@astrojs/node standalone, better-sqlite3) — through ``python -m runtime serve`` against the moto
S3 server. One suite, parametrized over the apps: what a user of either sees must hold for both.
The database in S3 is only ever read through the ``S3`` helper."""
import threading
import time
import urllib.parse

import pytest
import runtime_testkit
from runtime_testkit import ASTRO_APP, NodeAppUnavailable, SampleApp, astro_taskboard, python_taskboard

from runtime import handler as lambda_handler


@pytest.fixture(scope="session")
def built_astro(tmp_path_factory) -> SampleApp:
    # xdist's workers share the parent of their base temp dirs: the build lock lives there.
    try:
        return astro_taskboard(lock_dir=tmp_path_factory.getbasetemp().parent)
    except NodeAppUnavailable as error:
        pytest.fail(f"the Astro example cannot run: {error}", pytrace=False)


@pytest.fixture(params=["python", "astro"])
def app(request) -> SampleApp:
    return python_taskboard() if request.param == "python" else request.getfixturevalue("built_astro")


@pytest.fixture
def serve(app, start_runtime, runtime_env):
    """Start a runtime in serve mode running ``app``; each call gets an empty DB_PATH directory."""
    return lambda: start_runtime(env=runtime_env(APP_COMMAND=app.command, **app.env))


def form_post(runtime, title: str, *, origin: str | None = None):
    """A browser's form submission: urlencoded, with the Origin header browsers send on POST."""
    return runtime.request("POST", "/api/tasks", urllib.parse.urlencode({"title": title}),
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "Origin": origin or f"http://127.0.0.1:{runtime.port}"})


def delete(runtime, target: str):
    """DELETE as the page's fetch() sends it: no body, no Content-Type, and the Origin header
    browsers add to every non-GET request (Astro answers 403 to a body-less one without it)."""
    return runtime.request("DELETE", target, headers={"Origin": f"http://127.0.0.1:{runtime.port}"})


def test_cold_start_restores_the_existing_object(s3, serve):
    etag = s3.seed_tasks(["alpha", "beta"])
    runtime = serve()
    response = runtime.request("GET", "/api/tasks")
    assert response.status == 200 and response.header("Content-Type").startswith("application/json")
    assert response.json() == [{"id": 1, "title": "alpha", "done": False}, {"id": 2, "title": "beta", "done": False}]
    page = runtime.request("GET", "/")
    assert page.status == 200 and page.header("Content-Type").startswith("text/html")
    assert b"alpha" in page.body and b"beta" in page.body and b'<form method="post" action="/api/tasks">' in page.body
    assert runtime.request("GET", "/api/tasks/2").json() == {"id": 2, "title": "beta", "done": False}
    assert s3.etag() == etag and s3.writes() == 1  # reads wrote nothing back


def test_cold_start_without_an_object_starts_empty(s3, serve):
    runtime = serve()
    assert runtime.request("GET", "/api/tasks").json() == []
    assert b"No tasks yet." in runtime.request("GET", "/").body
    assert s3.etag() is None
    created = runtime.post_json("/api/tasks", {"title": "  first  "})
    assert created.status == 201 and created.json() == {"id": 1, "title": "first", "done": False}
    assert created.header("Location") == "/api/tasks/1"
    assert s3.query("SELECT id, title, done FROM tasks") == [(1, "first", 0)]


def test_every_write_is_in_s3_before_its_answer(s3, serve):
    s3.seed_tasks(["seeded"])
    runtime = serve()
    assert runtime.post_json("/api/tasks", {"title": "two"}).status == 201
    assert s3.query("SELECT title, done FROM tasks ORDER BY id") == [("seeded", 0), ("two", 0)] and s3.writes() == 2
    patched = runtime.request("PATCH", "/api/tasks/2", '{"done": true}', {"Content-Type": "application/json"})
    assert patched.status == 200 and patched.json() == {"id": 2, "title": "two", "done": True}
    assert s3.query("SELECT done FROM tasks WHERE id = 2") == [(1,)] and s3.writes() == 3
    assert delete(runtime, "/api/tasks/1").status == 204
    assert s3.query("SELECT id FROM tasks") == [(2,)] and s3.writes() == 4
    # Refused writes change nothing, so they upload nothing.
    assert delete(runtime, "/api/tasks/1").json() == {"error": "no such task"}
    assert runtime.post_json("/api/tasks", {"title": ""}).status == 400
    assert runtime.request("GET", "/api/tasks/999").status == 404
    assert s3.writes() == 4 and s3.integrity() == "ok"


def test_kill9_then_a_restart_on_an_empty_tmp_keeps_every_acknowledged_write(s3, serve):
    first = serve()
    for title in ("one", "two", "three"):
        assert first.post_json("/api/tasks", {"title": title}).status == 201
    assert first.request("PATCH", "/api/tasks/2", '{"done": true}', {"Content-Type": "application/json"}).status == 200
    first.kill9()
    second = serve()  # a new environment: an empty DB_PATH directory, everything from S3
    assert second.db_path.parent != first.db_path.parent
    assert second.request("GET", "/api/tasks").json() == [
        {"id": 1, "title": "one", "done": False}, {"id": 2, "title": "two", "done": True},
        {"id": 3, "title": "three", "done": False}]
    assert second.post_json("/api/tasks", {"title": "four"}).json()["id"] == 4
    assert s3.integrity() == "ok" and s3.query("SELECT count(*) FROM tasks") == [(4,)]


@pytest.mark.parametrize("path, content_type", [("/style.css", "text/css"), ("/favicon.png", "image/png")])
def test_static_assets_arrive_byte_for_byte_with_their_type(s3, serve, app, path, content_type):
    runtime = serve()
    response = runtime.request("GET", path)
    assert response.status == 200
    assert response.header("Content-Type").split(";")[0].strip() == content_type
    assert response.body == (app.static_dir / path.lstrip("/")).read_bytes()
    assert s3.etag() is None  # serving files never uploads


def test_a_form_post_through_serve_mode_redirects_sets_cookies_and_is_durable(s3, serve):
    runtime = serve()
    response = form_post(runtime, "from the form")
    assert response.status == 303 and response.header("Location") == "/"
    cookies = sorted(response.all("Set-Cookie"))
    assert len(cookies) == 2
    assert cookies[0].startswith("flash=added;") and "HttpOnly" in cookies[0] and "Path=/" in cookies[0]
    assert cookies[1].startswith("last_task=1;") and "Path=/" in cookies[1]
    assert s3.query("SELECT title FROM tasks") == [("from the form",)]
    # The page after the redirect shows the flash once and clears its cookie.
    page = runtime.request("GET", "/", headers={"Cookie": "flash=added; last_task=1"})
    assert b"Task added." in page.body and b"from the form" in page.body
    (cleared,) = page.all("Set-Cookie")
    assert cleared.startswith("flash=") and ("Max-Age=0" in cleared or "01 Jan 1970" in cleared)
    again = runtime.request("GET", "/")
    assert b"Task added." not in again.body and again.all("Set-Cookie") == []


def test_redirects_reach_the_client_unfollowed(serve):
    runtime = serve()
    response = runtime.request("GET", "/tasks")
    assert response.status == 301 and response.header("Location") == "/"


def test_unknown_paths_are_json_404s(serve):
    runtime = serve()
    for target in ("/nope", "/api/tasks/abc"):
        response = runtime.request("GET", target)
        assert (response.status, response.json()) == (404, {"error": "not found"})


# --- Astro's origin check: what allowedDomains in astro.config.mjs is for -----------------------

def test_astro_refuses_a_cross_site_form_post_and_nothing_is_written(s3, start_runtime, runtime_env, built_astro):
    runtime = start_runtime(env=runtime_env(APP_COMMAND=built_astro.command, **built_astro.env))
    refused = form_post(runtime, "forged", origin="https://attacker.example")
    assert refused.status == 403
    assert s3.etag() is None or s3.query("SELECT count(*) FROM tasks") == [(0,)]


def function_url_form_event(host: str, origin: str) -> dict:
    """A form POST as a Function URL delivers it: its own host, https, and the browser's Origin."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": "/api/tasks", "rawQueryString": "",
            "headers": {"host": host, "origin": origin, "content-type": "application/x-www-form-urlencoded",
                        "x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https", "x-forwarded-port": "443"},
            "requestContext": {"http": {"method": "POST", "path": "/api/tasks", "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.9", "userAgent": "test"}, "requestId": "req-1"},
            "body": "title=behind+the+url", "isBase64Encoded": False}


def test_astro_accepts_a_form_post_from_its_function_url_under_the_lambda_handler(s3, lambda_env, monkeypatch,
                                                                                 built_astro):
    monkeypatch.setenv("APP_COMMAND", built_astro.command)
    host = "abc123.lambda-url.us-west-2.on.aws"
    # Without allowedDomains Astro would build http://localhost/... and answer this 403.
    result = lambda_handler.handler(function_url_form_event(host, f"https://{host}"), None)
    assert result["statusCode"] == 303, result
    assert s3.query("SELECT title FROM tasks") == [("behind the url",)]
    forged = lambda_handler.handler(function_url_form_event(host, "https://attacker.example"), None)
    assert forged["statusCode"] == 403 and s3.query("SELECT count(*) FROM tasks") == [(1,)]


def test_without_node_modules_the_astro_app_is_an_error_naming_the_install_command(tmp_path):
    copy = tmp_path / "astro-taskboard"
    copy.mkdir()
    (copy / "package.json").write_bytes((ASTRO_APP / "package.json").read_bytes())
    with pytest.raises(NodeAppUnavailable, match=r"node_modules is missing or incomplete: run `npm ci --prefix "):
        astro_taskboard(copy, lock_dir=tmp_path)


def test_the_astro_app_waits_for_the_npm_ci_that_ci_runs_beside_the_tests(tmp_path, monkeypatch):
    marker = tmp_path / "npm-ci.exit"
    monkeypatch.setenv(runtime_testkit.NPM_CI_DONE, str(marker))
    threading.Timer(0.6, marker.write_text, args=("0\n",)).start()
    started = time.monotonic()
    runtime_testkit.wait_for_node_modules()
    assert marker.exists() and time.monotonic() - started >= 0.5


@pytest.mark.parametrize("code, message", [("1\n", r"npm ci --prefix \S+ exited with 1"),
                                           (None, r"npm ci did not finish within 1s")])
def test_an_npm_ci_that_failed_or_never_ended_is_named_in_the_error(code, message, tmp_path, monkeypatch):
    marker = tmp_path / "npm-ci.exit"
    if code is not None:
        marker.write_text(code)
    monkeypatch.setenv(runtime_testkit.NPM_CI_DONE, str(marker))
    monkeypatch.setattr(runtime_testkit, "NPM_CI_WAIT", 1.0)
    with pytest.raises(NodeAppUnavailable, match=message):
        astro_taskboard(lock_dir=tmp_path)
