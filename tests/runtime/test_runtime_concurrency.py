"""AWS_LAMBDA_MAX_CONCURRENCY > 1 (Lambda Managed Instances): the runtime refuses to serve.

It serializes requests over one SQLite file and one app port; workers running side by side
would share both and lose acknowledged writes. So every request is a 503 with the reason in one
error line, and nothing is restored or started that a second worker could trample.
"""
import json
import logging

from runtime_testkit import KEY, error_line, function_url_event, generic_id

from runtime import handler as lambda_handler


def test_the_lambda_handler_refuses_before_touching_s3_or_starting_the_app(s3, lambda_env, monkeypatch, caplog,
                                                                          tmp_path):
    s3.seed_tasks(["in s3"])
    monkeypatch.setenv("AWS_LAMBDA_MAX_CONCURRENCY", "4")
    with caplog.at_level(logging.INFO, logger="runtime"):
        for number in (1, 2):  # not only the first: every request, for as long as the setting holds
            event = function_url_event("POST", "/api/tasks", {"title": "lost?"})
            event["requestContext"]["requestId"] = f"req-{number}"
            result = lambda_handler.handler(event, None)
            assert result["statusCode"] == 503
            assert json.loads(result["body"]) == {"error": "503 Service Unavailable", "requestId": f"req-{number}"}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 2 and all(line.startswith("canvas-runtime 503 request=req-") for line in lines)
    assert "cause=concurrency: AWS_LAMBDA_MAX_CONCURRENCY=4" in lines[0]
    assert "needs one request per execution environment" in lines[0] and "without multi-concurrency" in lines[0]
    runtime = lambda_handler._runtime
    assert runtime._store is None and runtime._replica is None and runtime._app is None  # no S3 client, no app
    assert not (tmp_path / "tmp").exists()  # nothing restored
    assert s3.query("SELECT title FROM tasks") == [("in s3",)]


def test_a_concurrency_of_one_serves_normally(s3, lambda_env, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_MAX_CONCURRENCY", "1")
    event = function_url_event("POST", "/api/tasks", {"title": "kept"})
    assert lambda_handler.handler(event, None)["statusCode"] == 201
    assert s3.query("SELECT title FROM tasks") == [("kept",)]


def test_serve_mode_refuses_too(s3, start_runtime, probe_env):
    s3.seed_tasks(["in s3"])
    runtime = start_runtime(env=probe_env(AWS_LAMBDA_MAX_CONCURRENCY="2"))
    request_id = generic_id(runtime.request("POST", "/notes", "x"), 503, s3.bucket, KEY, "CONCURRENCY")
    error_line(runtime.log(), status=503, request_id=request_id, cause="concurrency")
    assert "app ready" not in runtime.log() and not runtime.db_path.exists()
