"""What the Function URL front end does, for serve mode: a raw HTTP request into a payload-2.0
event, and a handler result back into an HTTP response. Pure functions, no I/O.

Mirrors the documented event shape: lower-cased header names with repeats comma-joined,
cookies moved out of the headers into the ``cookies`` array, rawPath and rawQueryString exactly
as they appeared on the request line, binary bodies base64-encoded.

A real Function URL also adds ``x-forwarded-for`` (the client's address), ``x-forwarded-proto``
(``https``), ``x-forwarded-port`` (``443``) and sends its own domain as ``host`` (AWS's
documented example payload). Serve mode adds the same headers with its own values — the scheme
is the request's own, plain ``http`` — so framework checks built on them (Astro's origin check,
secure-cookie and redirect logic) behave locally as they will behind the URL. A client's own
``x-forwarded-*`` values are replaced, not appended to: the front end is where the request
enters, and nothing before it is to be trusted.
"""
from __future__ import annotations

import base64
import time
import uuid
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

from runtime.events import as_text, body_is_binary


def event_from_http(*, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes,
                    source_ip: str = "127.0.0.1", protocol: str = "HTTP/1.1",
                    server: tuple[str, int] = ("127.0.0.1", 80), scheme: str = "http") -> dict[str, Any]:
    """The payload-2.0 event a Function URL would deliver for this request, received by ``server``
    (host, port) over ``scheme``."""
    raw_path, _, raw_query = target.partition("?")
    joined, cookies = _join_headers(headers)
    joined.update(_forwarded(source_ip=source_ip, scheme=scheme, port=server[1]))
    joined.setdefault("host", f"{server[0]}:{server[1]}")  # HTTP/1.0 may omit it; the URL always has one
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


def _forwarded(*, source_ip: str, scheme: str, port: int) -> dict[str, str]:
    return {"x-forwarded-for": source_ip, "x-forwarded-proto": scheme, "x-forwarded-port": str(port)}


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

