"""The answers the runtime makes itself when it cannot give the app's, and the log line for each.

The caller may be anyone (a Function URL with auth_type NONE), so the public body is generic —
the status line and a request id, nothing else. What happened (bucket, key, the app's output, a
stack trace) goes to the log under that same id.

Every 5xx is logged as exactly one ERROR line in a stable shape, so a CloudWatch metric filter
can count what Lambda's ``Errors`` metric misses (to Lambda a runtime 503 is a successful
invocation)::

    canvas-runtime <status> request=<id> cause=<cause>: <detail>

Only this module writes ``canvas-runtime``; keep the shape and the causes stable (README lists
them). A 4xx the runtime makes is logged at WARNING in a different shape: it is the caller's
doing (or a conflict it can retry), not something to alarm on.
"""
from __future__ import annotations

import json
import logging
import uuid
from http import HTTPStatus
from typing import Any, Mapping

log = logging.getLogger(__name__)

PREFIX = "canvas-runtime"

# 5xx causes: what an operator filters on. One fixed word each.
SERVER_CAUSES = frozenset({
    "misconfigured",     # 503: an environment variable is missing or malformed
    "concurrency",       # 503: AWS_LAMBDA_MAX_CONCURRENCY > 1; the runtime refuses to serve
    "s3-unreachable",    # 503: S3 could not be reached or answered an error (after retries)
    "s3-denied",         # 503: S3 refused the function's role (AccessDenied)
    "bucket-missing",    # 503: the bucket does not exist
    "db-corrupt",        # 503: the object is not a sound SQLite database (left untouched)
    "db-deleted",        # 503: the object was deleted while this environment served it
    "db-unavailable",    # 503: the database could not be loaded or placed (e.g. /tmp too small)
    "app-start-failed",  # 503: the app exited, never got ready, or its port was taken
    "shutting-down",     # 503: serve mode is stopping
    "sync-failed",       # 503: a write's change could not be uploaded; not confirmed durable
    "app-crashed",       # 502: the app exited while handling the request
    "app-bad-answer",    # 502: the app closed the connection or answered something unparsable
    "app-timeout",       # 504: the app did not answer within APP_TIMEOUT
    "runtime-bug",       # 500: an unexpected exception in the runtime itself
})
# 4xx causes, logged at WARNING.
CLIENT_CAUSES = frozenset({"bad-event", "bad-request", "request-too-large", "response-too-large", "conflict"})


def new_request_id() -> str:
    """For a request that has none yet (serve mode before the event exists, a bare event)."""
    return str(uuid.uuid4())


def request_id_of(event: Mapping[str, Any]) -> str:
    return str((event.get("requestContext") or {}).get("requestId") or "") or new_request_id()


def answer(status: int, *, cause: str, request_id: str, detail: str,
           headers: Mapping[str, str] | None = None, exc_info: bool = False) -> dict[str, Any]:
    """Log the failure (one line) and return the generic Function URL result for it."""
    if status >= 500:
        assert cause in SERVER_CAUSES, cause  # a new cause must be added above and to the README
        log.error("%s %d request=%s cause=%s: %s", PREFIX, status, request_id, cause, detail, exc_info=exc_info)
    else:
        assert cause in CLIENT_CAUSES, cause
        log.warning("answering %d to request %s (%s): %s", status, request_id, cause, detail)
    return generic_result(status, request_id=request_id, headers=headers)


def generic_result(status: int, *, request_id: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"error": "503 Service Unavailable", "requestId": "..."}``: all a public caller learns."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "cookies": [],
        "body": json.dumps({"error": f"{status} {HTTPStatus(status).phrase}", "requestId": request_id}),
        "isBase64Encoded": False,
    }
