"""The Lambda entry point itself, ``runtime.handler.handler``, called in-process with Function URL
events, exactly as the runtime interface client calls it."""
import base64
import json
import sys

import pytest
from runtime_testkit import TASKBOARD, free_port

from runtime import handler as lambda_handler


def function_url_event(method, path, body=None, query="", cookies=None):
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


@pytest.fixture
def lambda_env(s3, monkeypatch, tmp_path):
    for name, value in {"S3_BUCKET_NAME": s3.bucket, "S3_DB_KEY": s3.key, "DB_PATH": str(tmp_path / "tmp" / "db"),
                        "APP_COMMAND": f"{sys.executable} {TASKBOARD}", "PORT": str(free_port()),
                        "READY_PATH": "/healthz"}.items():
        monkeypatch.setenv(name, value)
    yield
    if lambda_handler._runtime is not None:
        lambda_handler._runtime.shutdown()
    lambda_handler._runtime = None


def test_handler_serves_function_url_events(s3, lambda_env):
    created = lambda_handler.handler(function_url_event("POST", "/api/tasks", {"title": "via lambda"}), None)
    assert created["statusCode"] == 201 and created["isBase64Encoded"] is False
    assert json.loads(created["body"])["title"] == "via lambda"
    assert s3.query("SELECT title FROM tasks") == [("via lambda",)]  # durable before the handler returned
    listed = lambda_handler.handler(function_url_event("GET", "/api/tasks"), None)
    assert [task["title"] for task in json.loads(listed["body"])] == ["via lambda"]
    assert listed["headers"]["Content-Type"] == "application/json" and listed["cookies"] == []


def test_handler_answers_a_non_function_url_event_with_400(lambda_env, caplog):
    result = lambda_handler.handler({"source": "aws.events"}, None)
    assert result["statusCode"] == 400 and json.loads(result["body"])["error"] == "400 Bad Request"
    assert "(bad-event): event has no requestContext.http.method — is this a Function URL event?" in caplog.text


def test_misconfigured_handler_answers_503_and_logs_the_variable(monkeypatch, caplog):
    monkeypatch.delenv("S3_DB_KEY", raising=False)
    monkeypatch.setenv("S3_BUCKET_NAME", "b")
    lambda_handler._runtime = None
    event = function_url_event("GET", "/")
    event["requestContext"]["requestId"] = "req-misconfigured"
    result = lambda_handler.handler(event, None)
    assert result["statusCode"] == 503
    assert json.loads(result["body"]) == {"error": "503 Service Unavailable", "requestId": "req-misconfigured"}
    assert ("canvas-runtime 503 request=req-misconfigured cause=misconfigured: runtime misconfigured: "
            "S3_DB_KEY is not set") in caplog.text
    assert lambda_handler._runtime is None
