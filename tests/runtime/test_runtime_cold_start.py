"""Cold start: from an existing object, from none, and refusing a corrupt object or a missing bucket."""
import re
import sqlite3

import pytest


def titles(response):
    assert response.status == 200, response.body
    return [task["title"] for task in response.json()]


def test_cold_start_restores_the_existing_object(s3, start_runtime):
    etag = s3.seed_tasks(["alpha", "beta"])
    runtime = start_runtime()
    assert titles(runtime.request("GET", "/api/tasks")) == ["alpha", "beta"]
    assert f"(ETag {etag}" in runtime.log()
    assert s3.etag() == etag and s3.writes() == 1


def test_cold_start_without_an_object_starts_empty_and_says_so(s3, start_runtime):
    runtime = start_runtime()
    assert titles(runtime.request("GET", "/api/tasks")) == []
    assert f"no database object at s3://{s3.bucket}/{s3.key} yet: starting with an empty database" in runtime.log()
    assert s3.etag() is None
    assert runtime.post_json("/api/tasks", {"title": "first"}).status == 201
    assert s3.query("SELECT title FROM tasks") == [("first",)]


def garbage(tmp_path):
    return b"this is not a database " * 200


def truncated(tmp_path):
    path = tmp_path / "real.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT)")
    connection.executemany("INSERT INTO tasks (title) VALUES (?)", [("x" * 200,)] * 500)
    connection.commit()
    connection.close()
    data = path.read_bytes()
    return data[: len(data) // 2] + b"\xde\xad" * 2000  # a torn copy: header intact, pages garbled


@pytest.mark.parametrize("corrupt", [garbage, truncated])
def test_corrupt_object_gives_503_and_is_left_untouched(s3, start_runtime, tmp_path, corrupt):
    original = corrupt(tmp_path)
    etag = s3.put_bytes(original)
    runtime = start_runtime()
    for method, target, body in [("GET", "/api/tasks", None), ("POST", "/api/tasks", '{"title": "x"}')]:
        response = runtime.request(method, target, body, {"Content-Type": "application/json"})
        assert response.status == 503
        assert response.json()["error"] == "503 Service Unavailable"
        assert response.header("Retry-After") == "5"
    assert s3.etag() == etag and s3.writes() == 1 and s3.raw() == original
    log = runtime.log()
    assert f"s3://{s3.bucket}/{s3.key} (ETag {etag})" in log and "the object was left untouched" in log
    assert "app ready" not in log  # no app ever ran on a database that was not restored


def test_runtime_recovers_once_a_good_object_is_back(s3, start_runtime):
    s3.put_bytes(b"garbage" * 100)
    runtime = start_runtime()
    assert runtime.request("GET", "/api/tasks").status == 503
    s3.seed_tasks(["restored"])
    assert titles(runtime.request("GET", "/api/tasks")) == ["restored"]


def test_missing_bucket_gives_503_and_a_clear_log(start_runtime):
    runtime = start_runtime(S3_BUCKET_NAME="no-such-bucket-here")
    response = runtime.request("GET", "/api/tasks")
    assert response.status == 503
    # The public caller learns a request id; the bucket's name and the cause go to the log under it.
    request_id = response.json()["requestId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert "no-such-bucket-here" not in response.body.decode()
    assert (f"canvas-runtime 503 request={request_id} cause=bucket-missing: bucket 'no-such-bucket-here' "
            f"does not exist") in runtime.log()


def test_missing_configuration_is_named(runtime_env, tmp_path):
    import subprocess
    import sys

    env = runtime_env()
    del env["S3_BUCKET_NAME"]
    done = subprocess.run([sys.executable, "-m", "runtime", "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert "S3_BUCKET_NAME is not set" in done.stderr


def test_a_database_already_at_db_path_is_kept_aside_not_deleted(s3, start_runtime, runtime_env):
    env = runtime_env()
    local = __import__("pathlib").Path(env["DB_PATH"])
    connection = sqlite3.connect(local)
    connection.execute("CREATE TABLE precious (x)")
    connection.execute("INSERT INTO precious VALUES ('local work')")
    connection.commit()
    connection.close()
    s3.seed_tasks(["from s3"])
    runtime = start_runtime(env=env)
    assert [t["title"] for t in runtime.request("GET", "/api/tasks").json()] == ["from s3"]
    kept = list(local.parent.glob("db.sqlite.replaced-*"))
    assert len(kept) == 1 and sqlite3.connect(kept[0]).execute("SELECT x FROM precious").fetchall() == [("local work",)]
    assert f"moved it to {kept[0]}" in runtime.log()


def test_a_synced_copy_left_by_an_earlier_run_is_simply_replaced(s3, start_runtime, runtime_env):
    env = runtime_env()
    first = start_runtime(env=env)
    assert first.post_json("/api/tasks", {"title": "synced"}).status == 201
    first.kill9()
    second = start_runtime(env=env)  # same DB_PATH, state says everything was synced
    assert [t["title"] for t in second.request("GET", "/api/tasks").json()] == ["synced"]
    assert not list(second.db_path.parent.glob("db.sqlite.replaced-*"))
