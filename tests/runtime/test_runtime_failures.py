"""The answers the runtime makes itself: a generic public body (status line and request id, never
the bucket, the key, the app's output or a trace), and for every 5xx exactly one ERROR line
``canvas-runtime <status> request=<id> cause=<cause>: <detail>`` carrying what the body does not."""
import json
import logging
import os
import sys
import threading

from runtime_testkit import KEY, error_line, generic_id, held_past_app_timeout, wait_for

from runtime.config import Config
from runtime.core import Runtime

APP_SECRET = "probe app:"  # every line the probe app prints starts so


def test_missing_bucket(start_runtime, probe_env):
    runtime = start_runtime(env=probe_env(S3_BUCKET_NAME="no-such-bucket-q7"))
    request_id = generic_id(runtime.request("GET", "/notes"), 503, "no-such-bucket-q7", KEY)
    line = error_line(runtime.log(), status=503, request_id=request_id, cause="bucket-missing")
    assert "no-such-bucket-q7" in line


def test_corrupt_object(s3, start_runtime, probe_env):
    s3.put_bytes(b"not a database " * 100)
    runtime = start_runtime(env=probe_env())
    request_id = generic_id(runtime.request("GET", "/notes"), 503, s3.bucket, KEY, "SQLite")
    line = error_line(runtime.log(), status=503, request_id=request_id, cause="db-corrupt")
    assert f"s3://{s3.bucket}/{KEY}" in line


def test_app_that_cannot_start(start_runtime, runtime_env):
    command = f"{sys.executable} -c \"print('probe app: no DATABASE_URL', flush=True); raise SystemExit(4)\""
    runtime = start_runtime(env=runtime_env(APP_COMMAND=command))
    request_id = generic_id(runtime.request("GET", "/"), 503, APP_SECRET, "DATABASE_URL", sys.executable)
    line = error_line(runtime.log(), status=503, request_id=request_id, cause="app-start-failed")
    assert "exited with code 4 before it was ready" in line


def test_app_crash(start_runtime, probe_env):
    runtime = start_runtime(env=probe_env())
    request_id = generic_id(runtime.request("POST", "/crash", ""), 502, APP_SECRET, "exit code")
    error_line(runtime.log(), status=502, request_id=request_id, cause="app-crashed")
    assert "probe app: crashing on purpose" in runtime.log()  # the app's output: in the log only


def test_app_answering_garbage(start_runtime, probe_env):
    runtime = start_runtime(env=probe_env())
    request_id = generic_id(runtime.request("GET", "/garbage"), 502, "not HTTP", "BadStatusLine")
    line = error_line(runtime.log(), status=502, request_id=request_id, cause="app-bad-answer")
    assert "GET /garbage: the app closed the connection without answering" in line
    assert runtime.request("GET", "/notes").status == 200


def test_app_timeout(start_runtime, probe_env):
    env = probe_env(APP_TIMEOUT="1")
    runtime = start_runtime(env=env)
    response = held_past_app_timeout(runtime, env["GATE_DIR"], "POST", "/gate?nowrite", "x")
    request_id = generic_id(response, 504, "APP_TIMEOUT")
    error_line(runtime.log(), status=504, request_id=request_id, cause="app-timeout")


def test_write_whose_sync_fails(s3, start_runtime, probe_env):
    env = probe_env()
    runtime = start_runtime(env=env)
    assert runtime.request("POST", "/notes", "first").status == 201
    result = {}
    request = threading.Thread(target=lambda: result.update(response=runtime.request("POST", "/gate", "second")))
    request.start()
    wait_for(lambda: os.path.exists(os.path.join(env["GATE_DIR"], "entered")), timeout=20, what="the app to hold")
    s3.delete_bucket()  # after the freshness check, before the upload: the sync is the step that fails
    try:
        open(os.path.join(env["GATE_DIR"], "release"), "w").close()
        request.join(30)
        request_id = generic_id(result["response"], 503, s3.bucket, KEY)
        line = error_line(runtime.log(), status=503, request_id=request_id, cause="sync-failed")
        assert "POST /gate: the change is not confirmed durable" in line and f"s3://{s3.bucket}/{KEY}" in line
    finally:
        s3.client.create_bucket(Bucket=s3.bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})


def _config(tmp_path) -> Config:
    return Config(bucket="secret-bucket-b3", key="secret/key.db", db_path=str(tmp_path / "db"),
                  app_command=(sys.executable, "-c", "pass"), port=None, ready_path="/", sync_interval=30)


def test_a_bug_in_the_runtime_is_a_500_with_the_trace_in_the_log_only(tmp_path, caplog):
    event = {"requestContext": {"requestId": "req-bug", "http": {"method": "GET"}}, "rawPath": "/",
             "headers": "not a mapping"}  # makes the translation raise: stands in for any bug
    with caplog.at_level(logging.INFO, logger="runtime"):
        result = Runtime(_config(tmp_path)).handle(event)
    assert result["statusCode"] == 500
    assert json.loads(result["body"]) == {"error": "500 Internal Server Error", "requestId": "req-bug"}
    records = [r for r in caplog.records if r.getMessage().startswith("canvas-runtime ")]
    assert len(records) == 1 and records[0].levelno == logging.ERROR
    assert records[0].getMessage() == ("canvas-runtime 500 request=req-bug cause=runtime-bug: "
                                       "unexpected error in the runtime")
    assert records[0].exc_info is not None and "Traceback" not in result["body"]


def test_a_request_after_shutdown_is_a_503(tmp_path, caplog):
    runtime = Runtime(_config(tmp_path))
    runtime.shutdown()
    event = {"requestContext": {"requestId": "req-late", "http": {"method": "GET"}}, "rawPath": "/"}
    with caplog.at_level(logging.INFO, logger="runtime"):
        result = runtime.handle(event)
    assert result["statusCode"] == 503 and result["headers"]["retry-after"] == "1"
    assert json.loads(result["body"]) == {"error": "503 Service Unavailable", "requestId": "req-late"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "canvas-runtime 503 request=req-late cause=shutting-down: the runtime is stopping"]
