"""What the Function URL front end does, for serve mode: a raw HTTP request into a payload-2.0
event, and a handler result back into an HTTP response. Pure functions, no I/O.

Mirrors the documented event shape: lower-cased header names with repeats comma-joined,
cookies moved out of the headers into the ``cookies`` array, rawPath and rawQueryString exactly
as they appeared on the request line, binary bodies base64-encoded.
"""
from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

from runtime.events import as_text, body_is_binary


def event_from_http(*, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes,
                    source_ip: str = "127.0.0.1", protocol: str = "HTTP/1.1") -> dict[str, Any]:
    """The payload-2.0 event a Function URL would deliver for this request."""
    raw_path, _, raw_query = target.partition("?")
    joined, cookies = _join_headers(headers)
    binary = body_is_binary(joined.get("content-type"), joined.get("content-encoding"))
    text = None if binary else as_text(body)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path or "/",
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": joined.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": raw_path or "/",
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": text is None and bool(body),
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = _query_parameters(raw_query)
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
    return event


def http_from_result(result: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, header lines (one Set-Cookie per cookie) and body bytes for a handler result."""
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    headers = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", cookie) for cookie in result.get("cookies") or ()]
    return int(result.get("statusCode", 200)), headers, payload


def _join_headers(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
        elif lower in joined:
            joined[lower] += "," + value
        else:
            joined[lower] = value
    return joined, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    """Function URLs comma-join repeated parameters, decoded (the raw string stays in rawQueryString)."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = params[name] + "," + value if name in params else value
    return params

