"""Two environments on one object: the freshness check and the conditional PUT at work."""
import json
import threading

from runtime_testkit import wait_for


def titles(runtime):
    response = runtime.request("GET", "/api/tasks")
    assert response.status == 200, response.body
    return [(task["title"], task["done"]) for task in response.json()]


def test_two_runtimes_writing_in_turn_lose_nothing(s3, start_runtime):
    a, b = start_runtime(), start_runtime()
    assert a.post_json("/api/tasks", {"title": "from a"}).status == 201
    assert b.post_json("/api/tasks", {"title": "from b"}).status == 201  # b loads a's version first
    assert a.request("PATCH", "/api/tasks/2", '{"done": true}').status == 200  # a loads b's version first
    assert b.post_json("/api/tasks", {"title": "b again"}).status == 201
    assert a.request("DELETE", "/api/tasks/1").status == 204
    expected = [("from b", True), ("b again", False)]
    assert titles(a) == expected and titles(b) == expected
    assert s3.query("SELECT title, done FROM tasks ORDER BY id") == [("from b", 1), ("b again", 0)]
    assert s3.integrity() == "ok"
    # The newer versions were loaded into the live file under the app's open connection (backup API),
    # and no write was ever refused.
    assert "loaded the newer version" in a.log() and "loaded the newer version" in b.log()
    assert "answering 409" not in a.log() + b.log()


def test_concurrent_writers_never_lose_an_acknowledged_write(s3, start_runtime):
    runtimes = [start_runtime(), start_runtime()]
    outcomes: list[tuple[str, int, str | None]] = []
    lock = threading.Lock()

    def write(runtime, name):
        for n in range(8):
            title = f"{name}-{n}"
            response = runtime.post_json("/api/tasks", {"title": title})
            with lock:
                outcomes.append((title, response.status, response.header("Retry-After")))

    threads = [threading.Thread(target=write, args=(runtime, name))
               for runtime, name in zip(runtimes, "ab", strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == 16
    assert {status for _, status, _ in outcomes} <= {201, 409}
    assert all(retry == "1" for _, status, retry in outcomes if status == 409)
    acknowledged = {title for title, status, _ in outcomes if status == 201}
    assert acknowledged, "no write succeeded at all"
    in_s3 = {title for (title,) in s3.query("SELECT title FROM tasks")}
    assert in_s3 == acknowledged  # every 201 is there, no 409 is
    for runtime in runtimes:
        assert {title for title, _ in titles(runtime)} == acknowledged


def test_a_forced_412_gives_409_and_keeps_the_other_writers_data(s3, start_runtime, probe_env):
    env = probe_env()
    runtime = start_runtime(env=env)
    assert runtime.request("POST", "/notes", "before").status == 201
    gate = __import__("pathlib").Path(env["GATE_DIR"])
    result = {}
    request = threading.Thread(target=lambda: result.update(response=runtime.request("POST", "/gate", "mine")))
    request.start()
    # The runtime has done its freshness check and the app has committed "mine"; now another
    # environment writes first.
    wait_for(lambda: (gate / "entered").exists(), timeout=20, what="the app to hold the request")
    theirs = s3.edit("INSERT INTO notes (text) VALUES ('theirs')")
    (gate / "release").touch()
    request.join(30)

    response = result["response"]
    assert response.status == 409
    assert response.header("Retry-After") == "1"
    request_id = json.loads(response.body)["requestId"]
    assert f"answering 409 to request {request_id} (conflict): write conflict on POST /gate" in runtime.log()
    assert s3.etag() == theirs  # the other writer's version was not overwritten
    assert s3.query("SELECT text FROM notes ORDER BY id") == [("before",), ("theirs",)]
    # The runtime reloaded their version into the live database under the app's open connection.
    assert runtime.request("GET", "/notes").json() == ["before", "theirs"]
    assert "write conflict on POST /gate" in runtime.log() and "answering 409" in runtime.log()
    # And it goes on writing on top of their version.
    assert runtime.request("POST", "/notes", "after").status == 201
    assert s3.query("SELECT text FROM notes ORDER BY id") == [("before",), ("theirs",), ("after",)]


def test_a_write_that_changed_nothing_is_not_answered_409_for_earlier_reads_changes(s3, start_runtime, probe_env):
    """The conflict drops changes made by an earlier read (logged); this request's answer stands."""
    env = probe_env(SYNC_INTERVAL="3600")
    runtime = start_runtime(env=env)
    assert runtime.request("POST", "/notes", "base").status == 201
    assert runtime.request("GET", "/touch").status == 200  # unsynced change made by a read
    gate = __import__("pathlib").Path(env["GATE_DIR"])
    result = {}
    request = threading.Thread(target=lambda: result.update(response=runtime.request("POST", "/gate?nowrite", "x")))
    request.start()
    wait_for(lambda: (gate / "entered").exists(), timeout=20, what="the app to hold the request")
    theirs = s3.edit("INSERT INTO notes (text) VALUES ('theirs')")
    (gate / "release").touch()
    request.join(30)
    assert result["response"].status == 201
    assert s3.etag() == theirs and s3.query("SELECT count(*) FROM visits") == [(0,)]
    assert "changes made by earlier reads were dropped while serving POST /gate" in runtime.log()
    assert runtime.request("GET", "/notes").json() == ["base", "theirs"]
