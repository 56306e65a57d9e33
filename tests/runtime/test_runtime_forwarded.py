"""The headers a Function URL adds (x-forwarded-for/-proto/-port and its own host) reach the app,
under Lambda (the event carries them) and in serve mode (which adds them itself): frameworks'
origin and redirect checks depend on them."""
import json
import sys

from runtime_testkit import PROBE_APP, function_url_event

from runtime import handler as lambda_handler

FORWARDED = ("host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port")


def seen_by_app(echo: dict) -> dict[str, str]:
    headers = {name.lower(): value for name, value in echo["headers"]}
    return {name: headers.get(name) for name in FORWARDED}


def test_serve_mode_sends_the_app_its_own_host_scheme_port_and_the_clients_address(start_runtime, probe_env):
    runtime = start_runtime(env=probe_env())
    echo = runtime.request("GET", "/echo", headers=[("X-Forwarded-For", "6.6.6.6")]).json()
    assert seen_by_app(echo) == {"host": f"127.0.0.1:{runtime.port}", "x-forwarded-for": "127.0.0.1",
                                 "x-forwarded-proto": "http", "x-forwarded-port": str(runtime.port)}


def test_the_lambda_path_passes_the_function_urls_headers_to_the_app(lambda_env, monkeypatch):
    monkeypatch.setenv("APP_COMMAND", f"{sys.executable} {PROBE_APP}")
    event = function_url_event("GET", "/echo")
    sent = {"host": "abc123.lambda-url.us-west-2.on.aws", "x-forwarded-for": "203.0.113.9",
            "x-forwarded-proto": "https", "x-forwarded-port": "443"}
    event["headers"].update(sent)
    result = lambda_handler.handler(event, None)
    assert result["statusCode"] == 200
    assert seen_by_app(json.loads(result["body"])) == sent
