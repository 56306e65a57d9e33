"""One request at a time: freshness check, proxy to the app, change detection, sync.

That order is what makes an acknowledged write durable: the response leaves only after S3 has
accepted a snapshot containing the write, and S3 accepts it only if nobody else wrote since the
version it derives from. Requests are serialized, as Lambda does per environment.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Mapping

from runtime import ports
from runtime.app_process import AppConnection, AppError, AppProcess, AppTimeout, app_environment
from runtime.config import Config
from runtime.events import (AppRequest, EventError, PayloadTooLarge, error_result, request_from_event,
                            result_from_response)
from runtime.replica import Outcome, Replica, Unavailable
from runtime.store import ObjectStore

log = logging.getLogger(__name__)

# After the app drops a connection unanswered, how long to wait to learn whether it is exiting.
_CRASH_GRACE_SECONDS = 1.0


class Runtime:
    """The database replica and the app, driven by Function URL events."""

    def __init__(self, config: Config, *, env: Mapping[str, str] | None = None,
                 free_bytes: Callable[[str], int] | None = None) -> None:
        self.config = config
        self._env = dict(os.environ if env is None else env)
        self._free_bytes = free_bytes
        self._store: ObjectStore | None = None
        self._replica: Replica | None = None
        self._app: AppProcess | None = None
        self._connection: AppConnection | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Cold start now rather than on the first request (serve mode). Raises Unavailable."""
        with self._lock:
            self.start()

    def start(self) -> None:
        """Cold start (restore, then the app); afterwards only restarts an app that has exited.

        Raises Unavailable; the next call tries again from where it failed.
        """
        if self._replica is None:
            if self._store is None:
                self._store = ObjectStore(bucket=self.config.bucket, key=self.config.key,
                                          multipart_threshold=self.config.multipart_threshold,
                                          multipart_chunksize=self.config.multipart_chunksize)
            replica = Replica(self.config, self._store, free_bytes=self._free_bytes)
            replica.restore()
            self._replica = replica
        if self._app is None or not self._app.running():
            self._start_app()

    def _start_app(self) -> None:
        if self._app is not None:
            log.error("the app exited with code %s; restarting it. Its last output:\n%s",
                      self._app.exit_code(), self._app.output_tail())
        if self._connection is not None:
            self._connection.close()
        port = self.config.port or ports.free_port()
        app = AppProcess(self.config.app_command, port=port, ready_path=self.config.ready_path,
                         ready_timeout=self.config.ready_timeout,
                         env=app_environment(self._env, port=port, db_path=self.config.db_path))
        self._app = app
        try:
            app.start()
        except AppError as error:
            raise Unavailable(f"the app did not start: {error}") from None
        self._connection = AppConnection(port, timeout=self.config.app_timeout)

    def shutdown(self) -> None:
        """Stop the app, then sync whatever it left unsynced (serve mode's SIGTERM/SIGINT)."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
            if self._app is not None:
                self._app.stop()
            if self._replica is not None:
                self._replica.note_changes()
                if self._replica.dirty:
                    log.info("final sync at shutdown: %s", self._replica.sync().value)
                else:
                    log.info("final sync at shutdown: nothing unsynced")
                self._replica.close()
            if self._store is not None:
                self._store.close()

    # -- requests -------------------------------------------------------------------------

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A Function URL event in, a Function URL result out; never raises."""
        with self._lock:
            started = time.monotonic()
            if self._closed:
                return error_result(503, "the runtime is shutting down", headers={"retry-after": "1"})
            try:
                result = self._handle(event)
            except Exception:  # a bug, not a known failure: log it whole, answer without details
                log.exception("unexpected error in the runtime")
                result = error_result(500, "internal error in the runtime; see the function's log")
            http = (event.get("requestContext") or {}).get("http") or {}
            # The path only: query strings and headers can carry tokens and never go to the log.
            log.info("%s %s -> %s (%.1f ms)", http.get("method"), event.get("rawPath"),
                     result["statusCode"], (time.monotonic() - started) * 1000)
            return result

    def _handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        try:
            request = request_from_event(event)
        except PayloadTooLarge as error:
            return error_result(413, str(error))
        except EventError as error:
            return error_result(400, str(error))
        try:
            self.start()
            self._replica.refresh()
        except Unavailable as error:
            # The caller may be anyone (auth_type NONE): the cause, with bucket and key, goes to
            # the log under the request id, and the body says only where to look.
            request_id = (event.get("requestContext") or {}).get("requestId") or "-"
            log.error("answering 503 to request %s: %s", request_id, error)
            return error_result(503, f"the database is unavailable; try again shortly (request id {request_id}: "
                                     f"the function's log says why)", headers={"retry-after": "5"})
        before = self._replica.version()
        result = self._proxy(request)
        return self._settle(request, result, changed=self._replica.version() != before)

    def _proxy(self, request: AppRequest) -> dict[str, Any]:
        try:
            return result_from_response(self._connection.send(request), head=request.method == "HEAD")
        except PayloadTooLarge as error:
            return error_result(413, str(error))
        except AppTimeout as error:
            log.error("%s %s: %s", request.method, _path(request), error)
            return error_result(504, str(error))
        except AppError as error:
            if not self._app.exits_within(_CRASH_GRACE_SECONDS):
                log.error("%s %s: %s", request.method, _path(request), error)
                return error_result(502, f"the app failed to answer: {error}")
            log.error("the app crashed (exit code %s) while handling %s %s", self._app.exit_code(),
                      request.method, _path(request))
            return self._restart_after_crash()

    def _restart_after_crash(self) -> dict[str, Any]:
        try:
            self._start_app()
        except Unavailable as error:
            log.error("restarting the app failed: %s", error)
            return error_result(502, "the app crashed while handling this request and could not be restarted")
        return error_result(502, "the app crashed while handling this request; it has been restarted")

    def _settle(self, request: AppRequest, result: dict[str, Any], *, changed: bool) -> dict[str, Any]:
        """After the app answered: sync if due. If this write's own change could not be stored, the
        client is told: 409 when another environment wrote first, 503 when S3 failed."""
        self._replica.note_changes()
        if not self._replica.sync_due(write=request.is_write):
            return result
        outcome = self._replica.sync()
        if outcome is Outcome.SYNCED:
            return result
        own_write = request.is_write and changed
        if outcome is Outcome.CONFLICT:
            self._reload_after_conflict()
            if own_write:
                log.warning("write conflict on %s %s: another environment wrote first; this change was not "
                            "kept; answering 409", request.method, _path(request))
                return error_result(409, "another instance changed the data first, so this change was not kept; "
                                         "retry the request", headers={"retry-after": "1"})
            log.warning("changes made by earlier reads were dropped while serving %s %s: another environment "
                        "wrote first", request.method, _path(request))
            return result
        if own_write:
            return error_result(503, "the change could not be saved to S3, so it is not confirmed durable (it is "
                                     "kept locally and retried); check its effect before retrying",
                                headers={"retry-after": "5"})
        return result

    def _reload_after_conflict(self) -> None:
        try:
            self._replica.refresh(after_conflict=True)
        except Unavailable as error:
            log.error("could not load the other environment's version after a conflict: %s", error)


def _path(request: AppRequest) -> str:
    return request.target.partition("?")[0]
