"""Durability: acknowledged writes are in S3 before the response; reads never write; SYNC_INTERVAL."""
import time

import pytest
from runtime_testkit import wait_for


def titles(response):
    assert response.status == 200, response.body
    return [(task["title"], task["done"]) for task in response.json()]


def test_acknowledged_writes_survive_kill9_of_the_whole_process_group(start_runtime):
    first = start_runtime()
    created = first.post_json("/api/tasks", {"title": "survivor"})
    assert created.status == 201
    task_id = created.json()["id"]
    assert first.request("PATCH", f"/api/tasks/{task_id}", '{"done": true}').status == 200
    assert first.post_json("/api/tasks", {"title": "second"}).status == 201
    app_pid = first.app_pid()
    first.kill9()
    wait_for(lambda: not _alive(app_pid), timeout=5, what="the app to die with its process group")

    second = start_runtime()  # a new environment: empty DB_PATH, cold start from S3
    assert not second.db_path.exists() or second.db_path != first.db_path
    assert titles(second.request("GET", "/api/tasks")) == [("survivor", True), ("second", False)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_object_in_s3_is_a_complete_sound_database(s3, start_runtime):
    runtime = start_runtime()
    for n in range(5):
        assert runtime.post_json("/api/tasks", {"title": f"task {n}"}).status == 201
    assert runtime.request("PATCH", "/api/tasks/2", '{"title": "renamed"}').status == 200
    assert runtime.request("DELETE", "/api/tasks/4").status == 204
    assert s3.integrity() == "ok"
    # The object alone (no -wal beside it) holds every acknowledged change.
    assert s3.query("SELECT id, title FROM tasks ORDER BY id") == [
        (1, "task 0"), (2, "renamed"), (3, "task 2"), (5, "task 4")]


@pytest.mark.parametrize("interval", ["30", "0"])
def test_reads_cause_zero_s3_writes(s3, start_runtime, interval):
    etag = s3.seed_tasks(["one", "two"])
    runtime = start_runtime(SYNC_INTERVAL=interval)
    for _ in range(10):
        assert runtime.request("GET", "/api/tasks").status == 200
    for target in ("/", "/api/tasks/1", "/healthz"):
        assert runtime.request("GET", target).status == 200
    assert runtime.request("GET", "/api/tasks/999").status == 404
    assert runtime.request("HEAD", "/").status == 200
    assert s3.writes() == 1 and s3.etag() == etag
    assert "synced" not in runtime.log()


def test_a_write_request_that_changed_nothing_makes_no_s3_write(s3, start_runtime):
    etag = s3.seed_tasks(["one"])
    runtime = start_runtime()
    assert runtime.request("DELETE", "/api/tasks/999").status == 404
    assert runtime.request("PATCH", "/api/tasks/999", '{"done": true}').status == 404
    assert runtime.post_json("/api/tasks", {"title": ""}).status == 400
    assert runtime.request("POST", "/nowhere", "{}").status == 404
    assert s3.writes() == 1 and s3.etag() == etag


def test_each_write_method_is_in_s3_when_its_response_arrives(s3, start_runtime):
    runtime = start_runtime()
    assert runtime.post_json("/api/tasks", {"title": "a"}).status == 201
    assert s3.query("SELECT title, done FROM tasks") == [("a", 0)]
    assert runtime.request("PATCH", "/api/tasks/1", '{"done": true}').status == 200
    assert s3.query("SELECT title, done FROM tasks") == [("a", 1)]
    assert runtime.request("PUT", "/api/tasks/1", "{}").status in (404, 501)  # taskboard has no PUT
    assert runtime.request("DELETE", "/api/tasks/1").status == 204
    assert s3.query("SELECT count(*) FROM tasks") == [(0,)]
    assert s3.writes() == 3


def test_form_post_from_the_html_page_is_durable(s3, start_runtime):
    runtime = start_runtime()
    response = runtime.request("POST", "/api/tasks", "title=from+the+form",
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 303 and response.header("Location") == "/"
    assert s3.query("SELECT title FROM tasks") == [("from the form",)]
    assert "from the form" in runtime.request("GET", "/").body.decode()


def visits_in_s3(s3):
    return s3.query("SELECT count(*) FROM visits")[0][0]


def test_a_read_that_changed_the_database_waits_for_sync_interval(s3, start_runtime, probe_env):
    runtime = start_runtime(env=probe_env(SYNC_INTERVAL="3600"))
    assert runtime.request("POST", "/notes", "synced now").status == 201  # writes sync at once
    assert runtime.request("GET", "/touch").status == 200  # a read that writes: deferred
    for _ in range(3):
        assert runtime.request("GET", "/healthz").status == 200
    assert s3.writes() == 1 and visits_in_s3(s3) == 0


def test_a_read_that_changed_the_database_syncs_once_sync_interval_has_passed(s3, start_runtime, probe_env):
    runtime = start_runtime(env=probe_env(SYNC_INTERVAL="1"))
    assert runtime.request("POST", "/notes", "synced now").status == 201
    touched_at = time.monotonic()
    assert runtime.request("GET", "/touch").status == 200

    def synced_by_a_later_request():
        assert runtime.request("GET", "/healthz").status == 200  # any request after the interval syncs it
        return visits_in_s3(s3) == 1

    wait_for(synced_by_a_later_request, timeout=20, interval=0.2, what="the deferred change to reach S3")
    assert time.monotonic() - touched_at >= 1  # never before the interval: no upper bound to race
    assert s3.writes() == 2


def test_sync_interval_zero_syncs_a_changing_read_at_once(s3, start_runtime, probe_env):
    runtime = start_runtime(env=probe_env(SYNC_INTERVAL="0"))
    assert runtime.request("POST", "/notes", "n").status == 201
    assert runtime.request("GET", "/touch").status == 200
    assert s3.writes() == 2 and visits_in_s3(s3) == 1


def test_a_change_made_behind_the_apps_back_is_detected_by_data_version(s3, start_runtime, probe_env):
    """Another connection (here the test's own) commits: PRAGMA data_version notices, the next write syncs it."""
    import sqlite3

    runtime = start_runtime(env=probe_env())
    assert runtime.request("POST", "/notes", "via app").status == 201
    connection = sqlite3.connect(runtime.db_path)
    connection.execute("INSERT INTO notes (text) VALUES ('behind its back')")
    connection.commit()
    connection.close()
    assert runtime.request("GET", "/notes").status == 200
    assert s3.writes() == 1  # a read, within SYNC_INTERVAL: not yet
    assert runtime.request("DELETE", "/nothing").status == 404  # a write request that itself changed nothing
    assert s3.query("SELECT text FROM notes ORDER BY id") == [("via app",), ("behind its back",)]
