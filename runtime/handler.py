"""The Lambda entry point: ``runtime.handler.handler`` (the image's CMD).

The Runtime is built on the first invocation, not at import: a failure there (bad configuration,
missing bucket, corrupt object) is then answered as a clear 503 instead of a failed init phase,
and the next invocation tries again.
"""
from __future__ import annotations

import logging
from typing import Any

from runtime import failures, logs
from runtime.config import ConfigError, from_env
from runtime.core import Runtime

log = logging.getLogger(__name__)
logs.configure()

_runtime: Runtime | None = None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Serve one Function URL event (payload format 2.0)."""
    global _runtime
    if _runtime is None:
        try:
            _runtime = Runtime(from_env())
        except ConfigError as error:
            return failures.answer(503, cause="misconfigured", request_id=failures.request_id_of(event),
                                   detail=f"runtime misconfigured: {error}")
    return _runtime.handle(event)
