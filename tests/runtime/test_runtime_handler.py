"""The Lambda entry point itself, ``runtime.handler.handler``, called in-process with Function URL
events, exactly as the runtime interface client calls it."""
import json

from runtime_testkit import function_url_event

from runtime import handler as lambda_handler


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
