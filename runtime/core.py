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

from runtime import failures, ports
from runtime.app_process import AppConnection, AppError, AppProcess, AppTimeout, app_environment
from runtime.config import Config
from runtime.events import AppRequest, EventError, PayloadTooLarge, request_from_event, result_from_response
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
        if self.config.max_concurrency > 1:
            # Before anything is restored or started: nothing to clean up, nothing to lose.
            raise Unavailable(_concurrency_refusal(self.config.max_concurrency), cause="concurrency")
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
            # WARNING: the request still gets an answer; if it does not, its error line says so.
            log.warning("the app exited with code %s; restarting it. Its last output:\n%s",
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
            raise Unavailable(f"the app did not start: {error}", cause="app-start-failed") from None
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

    # Only called once start() has succeeded: these name the started parts without Optional.
    @property
    def _started_replica(self) -> Replica:
        assert self._replica is not None, "the runtime has not started"
        return self._replica

    @property
    def _started_app(self) -> AppProcess:
        assert self._app is not None, "the app has not started"
        return self._app

    @property
    def _started_connection(self) -> AppConnection:
        assert self._connection is not None, "the app has not started"
        return self._connection

    # -- requests -------------------------------------------------------------------------

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A Function URL event in, a Function URL result out; never raises."""
        with self._lock:
            started = time.monotonic()
            request_id = failures.request_id_of(event)
            if self._closed:
                return failures.answer(503, cause="shutting-down", request_id=request_id,
                                       detail="the runtime is stopping", headers={"retry-after": "1"})
            try:
                result = self._handle(event, request_id)
            except Exception:  # a bug, not a known failure: log it whole, answer without details
                result = failures.answer(500, cause="runtime-bug", request_id=request_id,
                                         detail="unexpected error in the runtime", exc_info=True)
            http = (event.get("requestContext") or {}).get("http") or {}
            # The path only: query strings and headers can carry tokens and never go to the log.
            log.info("%s %s -> %s (%.1f ms)", http.get("method"), event.get("rawPath"),
                     result["statusCode"], (time.monotonic() - started) * 1000)
            return result

    def _handle(self, event: Mapping[str, Any], request_id: str) -> dict[str, Any]:
        try:
            request = request_from_event(event)
        except PayloadTooLarge as error:
            return failures.answer(413, cause="request-too-large", request_id=request_id, detail=str(error))
        except EventError as error:
            return failures.answer(400, cause="bad-event", request_id=request_id, detail=str(error))
        try:
            self.start()
            replica = self._started_replica
            replica.refresh()
        except Unavailable as error:
            if self._replica is not None:
                self._replica.pin()  # a failed refresh may have released it
            return failures.answer(503, cause=error.cause, request_id=request_id, detail=str(error),
                                   headers={"retry-after": "5"})
        before = replica.version()
        try:
            result = self._proxy(request, request_id)
            replica.note_changes()
            return self._settle(request, result, request_id=request_id, changed=replica.version() != before)
        finally:
            replica.pin()  # held until the next request ends: no checkpoint restarts the WAL meanwhile

    def _proxy(self, request: AppRequest, request_id: str) -> dict[str, Any]:
        where = f"{request.method} {_path(request)}"
        try:
            return result_from_response(self._started_connection.send(request), head=request.method == "HEAD")
        except PayloadTooLarge as error:
            return failures.answer(413, cause="response-too-large", request_id=request_id, detail=f"{where}: {error}")
        except AppTimeout as error:
            return failures.answer(504, cause="app-timeout", request_id=request_id, detail=f"{where}: {error}")
        except AppError as error:
            if not self._started_app.exits_within(_CRASH_GRACE_SECONDS):
                return failures.answer(502, cause="app-bad-answer", request_id=request_id, detail=f"{where}: {error}")
            return self._restart_after_crash(where, request_id)

    def _restart_after_crash(self, where: str, request_id: str) -> dict[str, Any]:
        crash = f"the app crashed (exit code {self._started_app.exit_code()}) while handling {where}"
        try:
            self._start_app()
        except Unavailable as error:
            return failures.answer(502, cause="app-crashed", request_id=request_id,
                                   detail=f"{crash}; restarting it failed: {error}")
        return failures.answer(502, cause="app-crashed", request_id=request_id, detail=f"{crash}; it was restarted")

    def _settle(self, request: AppRequest, result: dict[str, Any], *, request_id: str,
                changed: bool) -> dict[str, Any]:
        """After the app answered: sync if due. If this write's own change could not be stored, the
        client is told: 409 when another environment wrote first, 503 when S3 failed."""
        if not self._started_replica.sync_due(write=request.is_write):
            return result
        outcome = self._started_replica.sync()
        if outcome is Outcome.SYNCED:
            return result
        own_write = request.is_write and changed
        if outcome is Outcome.CONFLICT:
            self._reload_after_conflict()
            if own_write:
                return failures.answer(409, cause="conflict", request_id=request_id,
                                       detail=f"write conflict on {request.method} {_path(request)}: another "
                                              f"environment wrote first; this change was not kept",
                                       headers={"retry-after": "1"})
            log.warning("changes made by earlier reads were dropped while serving %s %s: another environment "
                        "wrote first", request.method, _path(request))
            return result
        if own_write:
            return failures.answer(503, cause="sync-failed", request_id=request_id,
                                   detail=f"{request.method} {_path(request)}: the change is not confirmed durable "
                                          f"(kept locally, retried by the next request or the final sync): "
                                          f"{self._started_replica.last_failure}",
                                   headers={"retry-after": "5"})
        return result

    def _reload_after_conflict(self) -> None:
        try:
            self._started_replica.refresh(after_conflict=True)
        except Unavailable as error:
            log.error("could not load the other environment's version after a conflict: %s", error)


def _concurrency_refusal(limit: int) -> str:
    # Measured under awslambdaric 4.x with AWS_LAMBDA_MAX_CONCURRENCY set: its workers share DB_PATH
    # and PORT, the second app cannot bind, the first answers the second's readiness check, and the
    # second restore swaps the file under the first — acknowledged writes went missing from S3.
    return (f"AWS_LAMBDA_MAX_CONCURRENCY={limit}: this environment would run up to {limit} requests at once, "
            f"but the runtime serializes requests over one SQLite file and one app port and needs one request "
            f"per execution environment; refusing to serve (nothing was restored, no app started). Run the "
            f"function without multi-concurrency (a standard Lambda function, or a Managed Instances "
            f"capacity provider with a per-environment concurrency of 1)")


def _path(request: AppRequest) -> str:
    return request.target.partition("?")[0]
