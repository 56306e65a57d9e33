"""Function URL events (payload format 2.0) to app requests, and app responses back to results.

Pure functions, no I/O. Fidelity rules, each one a bug seen in other adapters:
- the request target is rawPath + rawQueryString as received; only characters that can never
  appear literally in a request line are escaped, so ``%2B`` and ``+`` reach the app unchanged;
- the event's ``cookies`` array becomes exactly one Cookie header (``headers.cookie`` is the same
  data when present, so it is dropped rather than sent twice);
- every Set-Cookie goes to the result's ``cookies`` list; other repeated headers are comma-joined;
- bodies are base64 in both directions when the content is binary (by Content-Type and
  Content-Encoding), plain text otherwise;
- Function URL payloads are limited to 6 MB each way: an oversized one raises PayloadTooLarge
  (the runtime answers 413 through runtime.failures, with the sizes in the log only).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import quote

# Lambda's synchronous invocation limit, which Function URLs inherit for request and response.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded; Content-Length
# is recomputed by whoever writes the next message.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length",
})

# Characters allowed literally in a path / query (RFC 3986 pchar plus "%" so existing escapes stay).
_PATH_SAFE = "/!$&'()*+,;=:@%"
_QUERY_SAFE = _PATH_SAFE + "?[]"

_TEXT_TYPES = ("text/",)
_TEXT_SUBTYPES = frozenset({
    "application/json", "application/javascript", "application/ecmascript", "application/xml",
    "application/x-www-form-urlencoded", "application/graphql", "application/x-ndjson",
    "image/svg+xml", "application/yaml", "application/x-yaml",
})


class EventError(ValueError):
    """The event is not a Function URL request this runtime can forward."""


class PayloadTooLarge(Exception):
    """A request or response exceeds the Function URL payload limit."""


@dataclass(frozen=True)
class AppRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass(frozen=True)
class AppResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def request_from_event(event: Mapping[str, Any]) -> AppRequest:
    """The HTTP request the app should see for this Function URL event."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = (http.get("method") or "").upper()
    if not method:
        raise EventError("event has no requestContext.http.method — is this a Function URL event?")
    body = _decode_body(event.get("body"), bool(event.get("isBase64Encoded")))
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return AppRequest(
        method=method,
        target=request_target(event.get("rawPath") or http.get("path") or "/", event.get("rawQueryString") or ""),
        headers=_request_headers(event.get("headers") or {}, event.get("cookies") or (),
                                 body_length=len(body), expects_body=method in _BODY_METHODS),
        body=body,
    )


def request_target(raw_path: str, raw_query: str) -> str:
    """rawPath?rawQueryString, escaping only what a request line cannot carry (never double-encoding)."""
    path = quote(raw_path if raw_path.startswith("/") else "/" + raw_path, safe=_PATH_SAFE)
    return path + ("?" + quote(raw_query, safe=_QUERY_SAFE) if raw_query else "")


def _decode_body(body: str | None, is_base64: bool) -> bytes:
    if not body:
        return b""
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise EventError("event body is marked isBase64Encoded but is not valid base64") from None


def _request_headers(headers: Mapping[str, str], cookies: Iterable[str], *,
                     body_length: int, expects_body: bool) -> tuple[tuple[str, str], ...]:
    out = [(name, str(value)) for name, value in headers.items()
           if name.lower() not in _HOP_BY_HOP and name.lower() != "expect"
           and not (cookies and name.lower() == "cookie")]
    if cookies:
        out.append(("cookie", "; ".join(cookies)))
    if body_length or expects_body:
        # The whole body is already here: the app gets an exact length, never chunks or 100-continue.
        out.append(("content-length", str(body_length)))
    return tuple(out)


def result_from_response(response: AppResponse, *, head: bool = False) -> dict[str, Any]:
    """The Function URL result for the app's response; PayloadTooLarge if it is too large to return.
    A HEAD answer keeps the app's Content-Length: it has no body to recompute it from."""
    headers, cookies = merge_response_headers(response.headers)
    if head:
        length = _header(dict(response.headers), "content-length")
        if length is not None:
            headers["content-length"] = length
    binary = body_is_binary(_header(headers, "content-type"), _header(headers, "content-encoding"))
    text = None if binary else as_text(response.body)
    result = {
        "statusCode": response.status,
        "headers": headers,
        "cookies": cookies,
        "body": text if text is not None else base64.b64encode(response.body).decode("ascii"),
        "isBase64Encoded": text is None,
    }
    if payload_size(result) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"the app's response ({len(response.body)} bytes of body) exceeds the "
                                 f"Function URL limit of {MAX_PAYLOAD_BYTES} bytes; the request itself was processed")
    return result


def merge_response_headers(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Comma-join repeated headers case-insensitively (first spelling wins); Set-Cookie split out."""
    headers: dict[str, str] = {}
    spelling: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        lower = name.lower()
        if lower == "set-cookie":
            cookies.append(value)
        elif lower in _HOP_BY_HOP:
            continue
        elif lower in spelling:
            headers[spelling[lower]] += ", " + value
        else:
            spelling[lower] = name
            headers[name] = value
    return headers, cookies


def body_is_binary(content_type: str | None, content_encoding: str | None) -> bool:
    """Whether a body must travel base64: compressed, or not a textual media type."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        return True
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return not (media.startswith(_TEXT_TYPES) or media in _TEXT_SUBTYPES
                or media.endswith(("+json", "+xml", "+yaml")))


def as_text(body: bytes) -> str | None:
    """The body as text, or None when it is not valid UTF-8 (then it travels base64)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def payload_size(result: Mapping[str, Any]) -> int:
    return len(json.dumps(result, separators=(",", ":")).encode("utf-8"))

