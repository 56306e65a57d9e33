"""Translation end to end: real HTTP into ``python -m runtime serve``, through the handler, to an
app that echoes what it received, and back. These tests only read what the app saw, so they
share one runtime (and one bucket) for speed."""
import base64
import gzip
import uuid

import pytest
from runtime_testkit import PROBE_APP, S3, RuntimeProcess, runtime_environment

from runtime.events import MAX_PAYLOAD_BYTES


@pytest.fixture(scope="module")
def runtime(moto_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("translation")
    bucket = S3(moto_server, f"rt-{uuid.uuid4().hex[:12]}", home)
    process = RuntimeProcess(runtime_environment(endpoint=moto_server, bucket=bucket.bucket, home=home,
                                                 app=PROBE_APP, GATE_DIR=str(home)), home / "runtime.log")
    yield process
    process.cleanup()
    bucket.delete_bucket()


def echo(runtime, method, target, body=None, headers=None):
    response = runtime.request(method, target, body, headers)
    assert response.status == 200, response.body
    return response.json()


def echoed_headers(seen, name):
    return [value for key, value in seen["headers"] if key.lower() == name]


@pytest.mark.parametrize("target", ["/echo?q=a+b", "/echo?q=a%2Bb", "/echo?a=1+2&b=1%2B2&c=%252B",
                                    "/echo/a%2Fb%20c?x=%E2%9C%93", "/echo?flag&empty="])
def test_path_and_query_reach_the_app_unchanged(runtime, target):
    assert echo(runtime, "GET", target)["target"] == target


def test_method_and_text_body_reach_the_app(runtime):
    seen = echo(runtime, "PATCH", "/echo", "héllo", {"Content-Type": "text/plain; charset=utf-8"})
    assert seen["method"] == "PATCH"
    assert base64.b64decode(seen["body"]) == "héllo".encode()


def test_binary_request_body_survives(runtime):
    raw = bytes(range(256)) * 16
    seen = echo(runtime, "PUT", "/echo", raw, {"Content-Type": "application/octet-stream"})
    assert base64.b64decode(seen["body"]) == raw


def test_cookies_reach_the_app_as_one_header(runtime):
    seen = echo(runtime, "GET", "/echo", headers=[("Cookie", "a=1; b=2"), ("Cookie", "c=3")])
    assert echoed_headers(seen, "cookie") == ["a=1; b=2; c=3"]


def test_repeated_request_headers_arrive_comma_joined(runtime):
    seen = echo(runtime, "GET", "/echo", headers=[("X-Multi", "one"), ("X-Multi", "two")])
    assert echoed_headers(seen, "x-multi") == ["one,two"]


def test_every_set_cookie_comes_back_and_repeated_headers_are_joined(runtime):
    response = runtime.request("GET", "/cookies")
    assert response.all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
    assert response.all("X-Multi") == ["one, two"]


def test_binary_response_survives(runtime):
    response = runtime.request("GET", "/binary")
    assert response.body == bytes(range(256)) * 4
    assert response.header("Content-Type") == "application/octet-stream"


def test_compressed_response_survives(runtime):
    response = runtime.request("GET", "/gzip")
    assert response.header("Content-Encoding") == "gzip"
    assert gzip.decompress(response.body) == b"compressed text " * 50


@pytest.mark.parametrize("status", [201, 302, 404, 418, 500])
def test_status_codes_pass_through(runtime, status):
    assert runtime.request("GET", f"/status/{status}").status == status


def test_request_over_six_megabytes_gets_413_and_the_runtime_keeps_serving(runtime):
    response = runtime.request("POST", "/echo", b"x" * (MAX_PAYLOAD_BYTES + 1), {"Content-Type": "text/plain"})
    assert response.status == 413
    assert response.json()["error"] == "413 Request Entity Too Large"
    assert f"answering 413 to request {response.json()['requestId']} (request-too-large)" in runtime.log()
    assert "6291456" in runtime.log()
    assert runtime.request("GET", "/healthz").status == 200


def test_response_over_six_megabytes_gets_413_and_the_runtime_keeps_serving(runtime):
    response = runtime.request("GET", f"/big/{MAX_PAYLOAD_BYTES + 10}")
    assert response.status == 413
    assert set(response.json()) == {"error", "requestId"}
    assert f"answering 413 to request {response.json()['requestId']} (response-too-large): GET /big/" in runtime.log()
    assert "exceeds the Function URL limit" in runtime.log()
    assert runtime.request("GET", "/big/10").body == b"x" * 10


def test_a_binary_body_whose_event_exceeds_six_megabytes_gets_413(runtime):
    # 4.8 MB of binary travels base64 in the event (6.4 MB): a real Function URL refuses it.
    body = bytes(range(256)) * (4_800_000 // 256)
    assert len(body) < MAX_PAYLOAD_BYTES
    response = runtime.request("POST", "/echo", body, {"Content-Type": "application/octet-stream"})
    assert response.status == 413
    assert "the request's event is" in runtime.log() and "event" not in response.json()["error"]
    text = runtime.request("POST", "/status/200", b"x" * 4_800_000, {"Content-Type": "text/plain"})
    assert text.status == 200  # the same size as text travels as it is and fits


def test_head_answers_the_content_length_the_app_sent(runtime):
    response = runtime.request("HEAD", "/big/12345")
    assert response.status == 200
    assert response.header("Content-Length") == "12345" and response.body == b""
