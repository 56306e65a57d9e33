"""Event <-> HTTP translation, called directly: Function URL event to app request, app response to
result, and serve mode's emulation of the Function URL front end."""
import base64
import gzip

import pytest

from runtime.events import (
    MAX_PAYLOAD_BYTES,
    AppResponse,
    EventError,
    PayloadTooLarge,
    request_from_event,
    request_target,
    result_from_response,
)
from runtime.function_url import event_from_http, http_from_result


def event(method="GET", raw_path="/", query="", headers=None, cookies=None, body=None, b64=False):
    value = {"version": "2.0", "rawPath": raw_path, "rawQueryString": query, "headers": headers or {},
             "requestContext": {"http": {"method": method, "path": raw_path}}, "isBase64Encoded": b64}
    if cookies is not None:
        value["cookies"] = cookies
    if body is not None:
        value["body"] = body
    return value


def header_values(request, name):
    return [value for key, value in request.headers if key.lower() == name]


# -- query strings and paths ------------------------------------------------------------------

@pytest.mark.parametrize("query", ["q=a+b", "q=a%2Bb", "q=a%20b&q=c", "x=%252B", "a=1&b=&c", "emoji=%F0%9F%98%80"])
def test_query_string_reaches_the_app_byte_for_byte(query):
    assert request_from_event(event(query=query)).target == "/?" + query


def test_plus_and_encoded_plus_stay_distinct():
    target = request_from_event(event(raw_path="/search", query="a=1+2&b=1%2B2")).target
    assert target == "/search?a=1+2&b=1%2B2"


def test_encoded_path_is_not_encoded_twice():
    assert request_target("/files/a%2Fb%20c", "") == "/files/a%2Fb%20c"


def test_characters_a_request_line_cannot_carry_are_escaped_once():
    assert request_target("/a b/é", "q=x y") == "/a%20b/%C3%A9?q=x%20y"


def test_missing_raw_path_falls_back_to_the_request_context_path():
    value = event(raw_path="/from-context")
    del value["rawPath"]
    assert request_from_event(value).target == "/from-context"


# -- headers and cookies --------------------------------------------------------------------

def test_cookies_array_becomes_exactly_one_cookie_header():
    request = request_from_event(event(cookies=["a=1", "b=2"]))
    assert header_values(request, "cookie") == ["a=1; b=2"]


def test_cookie_header_alongside_cookies_array_is_not_sent_twice():
    request = request_from_event(event(cookies=["a=1", "b=2"], headers={"cookie": "a=1; b=2"}))
    assert header_values(request, "cookie") == ["a=1; b=2"]


def test_cookie_header_alone_is_forwarded():
    request = request_from_event(event(headers={"cookie": "solo=1"}))
    assert header_values(request, "cookie") == ["solo=1"]


def test_multi_value_request_header_stays_comma_joined():
    request = request_from_event(event(headers={"accept": "text/html,application/json", "x-tag": "a,b"}))
    assert header_values(request, "accept") == ["text/html,application/json"]
    assert header_values(request, "x-tag") == ["a,b"]


def test_hop_by_hop_and_expect_headers_are_not_forwarded():
    request = request_from_event(event(method="POST", body="x", headers={
        "connection": "keep-alive", "transfer-encoding": "chunked", "expect": "100-continue",
        "content-length": "999", "x-kept": "yes"}))
    names = [name.lower() for name, _ in request.headers]
    assert "connection" not in names and "transfer-encoding" not in names and "expect" not in names
    assert header_values(request, "content-length") == ["1"]
    assert header_values(request, "x-kept") == ["yes"]


def test_post_without_body_still_declares_its_length():
    assert header_values(request_from_event(event(method="POST")), "content-length") == ["0"]


def test_set_cookies_go_to_the_cookies_list_and_repeated_headers_are_joined():
    result = result_from_response(AppResponse(200, (
        ("Content-Type", "text/plain"), ("Set-Cookie", "a=1; Path=/"), ("X-Multi", "one"),
        ("set-cookie", "b=2; HttpOnly"), ("x-multi", "two"), ("Connection", "keep-alive"),
        ("Content-Length", "2")), b"ok"))
    assert result["cookies"] == ["a=1; Path=/", "b=2; HttpOnly"]
    assert result["headers"] == {"Content-Type": "text/plain", "X-Multi": "one, two"}


def test_response_header_case_is_kept():
    result = result_from_response(AppResponse(200, (("X-Request-ID", "abc"), ("content-type", "text/plain")), b""))
    assert set(result["headers"]) == {"X-Request-ID", "content-type"}


# -- bodies ---------------------------------------------------------------------------------

def test_base64_request_body_is_decoded_to_bytes():
    raw = bytes(range(256))
    request = request_from_event(event(method="PUT", body=base64.b64encode(raw).decode(), b64=True))
    assert request.body == raw
    assert header_values(request, "content-length") == ["256"]


def test_text_request_body_is_sent_as_utf8():
    assert request_from_event(event(method="POST", body="héllo")).body == "héllo".encode()


def test_invalid_base64_body_is_a_clear_error():
    with pytest.raises(EventError, match="base64"):
        request_from_event(event(method="POST", body="not base64!", b64=True))


@pytest.mark.parametrize("content_type,encoding,binary", [
    ("application/octet-stream", None, True),
    ("image/png", None, True),
    ("text/html; charset=utf-8", None, False),
    ("application/json", None, False),
    ("application/vnd.api+json", None, False),
    ("image/svg+xml", None, False),
    ("text/plain", "gzip", True),
    ("text/plain", "identity", False),
])
def test_response_body_encoding_follows_content_type_and_encoding(content_type, encoding, binary):
    body = gzip.compress(b"text") if encoding == "gzip" else b"\x89PNG\x00\xff" if binary else b"plain text"
    headers = (("Content-Type", content_type),) + ((("Content-Encoding", encoding),) if encoding else ())
    result = result_from_response(AppResponse(200, headers, body))
    assert result["isBase64Encoded"] is binary
    decoded = base64.b64decode(result["body"]) if binary else result["body"].encode()
    assert decoded == body


def test_text_that_is_not_utf8_travels_base64_rather_than_being_mangled():
    result = result_from_response(AppResponse(200, (("Content-Type", "text/plain"),), b"caf\xe9"))
    assert result["isBase64Encoded"] is True
    assert base64.b64decode(result["body"]) == b"caf\xe9"


@pytest.mark.parametrize("status", [200, 201, 204, 302, 404, 418, 500, 503])
def test_status_code_is_passed_through(status):
    assert result_from_response(AppResponse(status, (), b""))["statusCode"] == status


# -- the 6 MB limit -----------------------------------------------------------------------

def test_request_over_six_megabytes_is_refused():
    big = base64.b64encode(b"\0" * (MAX_PAYLOAD_BYTES + 1)).decode()
    with pytest.raises(PayloadTooLarge, match="limit"):
        request_from_event(event(method="POST", body=big, b64=True))


def test_request_at_the_limit_is_accepted():
    assert len(request_from_event(event(method="POST", body="x" * MAX_PAYLOAD_BYTES)).body) == MAX_PAYLOAD_BYTES


def test_response_over_the_limit_is_refused():
    with pytest.raises(PayloadTooLarge, match="exceeds the Function URL limit"):
        result_from_response(AppResponse(200, (("Content-Type", "application/octet-stream"),),
                                         b"\0" * (5 * 1024 * 1024)))  # base64 makes it ~6.7 MB


# -- serve mode: the emulated Function URL front end ------------------------------------------

def test_http_request_becomes_a_payload_2_event():
    produced = event_from_http(method="post", target="/p%2Fq?a=1+2&a=3&b=%2B",
                               headers=[("Host", "example"), ("X-Multi", "1"), ("x-multi", "2"),
                                        ("Cookie", "a=1; b=2"), ("Cookie", "c=3"), ("Content-Type", "text/plain")],
                               body=b"hi")
    assert produced["version"] == "2.0"
    assert produced["rawPath"] == "/p%2Fq" and produced["rawQueryString"] == "a=1+2&a=3&b=%2B"
    assert produced["requestContext"]["http"]["method"] == "POST"
    assert produced["headers"]["x-multi"] == "1,2"
    assert "cookie" not in produced["headers"]
    assert produced["cookies"] == ["a=1", "b=2", "c=3"]
    assert produced["queryStringParameters"] == {"a": "1 2,3", "b": "+"}
    assert produced["body"] == "hi" and produced["isBase64Encoded"] is False


def test_binary_http_body_becomes_base64_in_the_event():
    raw = bytes(range(256))
    produced = event_from_http(method="PUT", target="/", headers=[("Content-Type", "application/octet-stream")],
                               body=raw)
    assert produced["isBase64Encoded"] is True and base64.b64decode(produced["body"]) == raw


def test_result_becomes_http_with_one_set_cookie_line_per_cookie():
    status, headers, body = http_from_result({"statusCode": 201, "headers": {"X-A": "1, 2"},
                                              "cookies": ["a=1", "b=2"], "body": base64.b64encode(b"\x00\x01").decode(),
                                              "isBase64Encoded": True})
    assert status == 201 and body == b"\x00\x01"
    assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert ("X-A", "1, 2") in headers


def test_round_trip_through_both_translations_keeps_the_request():
    raw = b"\x00binary\xff"
    produced = event_from_http(method="PATCH", target="/x?q=a+b%2B", headers=[
        ("Content-Type", "application/octet-stream"), ("Cookie", "s=1"), ("Accept", "a"), ("Accept", "b")], body=raw)
    request = request_from_event(produced)
    assert request.method == "PATCH" and request.target == "/x?q=a+b%2B" and request.body == raw
    assert header_values(request, "cookie") == ["s=1"]
    assert header_values(request, "accept") == ["a,b"]


@pytest.mark.parametrize("media", ["application/yaml", "application/x-yaml", "application/openapi+yaml",
                                   "text/yaml; charset=utf-8"])
def test_yaml_responses_travel_as_text_not_base64(media):
    result = result_from_response(AppResponse(200, (("Content-Type", media),), b"key: value\n"))
    assert result["isBase64Encoded"] is False and result["body"] == "key: value\n"


def test_serve_mode_adds_the_forwarded_headers_a_function_url_adds():
    produced = event_from_http(method="GET", target="/", headers=[("Host", "127.0.0.1:9000"),
                                                                  ("X-Forwarded-For", "6.6.6.6")],
                               body=b"", source_ip="192.0.2.7", server=("127.0.0.1", 9000))
    assert {name: produced["headers"][name] for name in ("host", "x-forwarded-for", "x-forwarded-proto",
                                                         "x-forwarded-port")} == {
        "host": "127.0.0.1:9000", "x-forwarded-for": "192.0.2.7", "x-forwarded-proto": "http",
        "x-forwarded-port": "9000"}  # the client's own X-Forwarded-For is not trusted


def test_a_request_without_host_gets_the_servers_own():
    produced = event_from_http(method="GET", target="/", headers=[], body=b"", server=("127.0.0.1", 9100))
    assert produced["headers"]["host"] == "127.0.0.1:9100"
