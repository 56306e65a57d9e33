"""The local database as a replica of the S3 object: restore, freshness, sync, final sync.

Invariants this module keeps:
- the local file only ever comes from S3 through a validated download (a corrupt or missing
  object never turns into an empty database that could later overwrite the real one);
- every upload names the version it replaces (If-Match, or If-None-Match: * for the first), so
  two environments can never silently overwrite each other;
- ``etag`` is always the version the local contents derive from, and the state file in /tmp says
  so for the shutdown extension.
"""
from __future__ import annotations

import enum
import logging
import os
import sqlite3
import time
from typing import Callable

from runtime import database, state
from runtime.config import Config
from runtime.database import ChangeWatcher, DatabaseError
from runtime.store import UNCHANGED, AccessDenied, BucketMissing, Conflict, ObjectStore, Remote, StoreError

log = logging.getLogger(__name__)

# A download that loses a race with a writer (412 on a ranged GET) probes again this many times.
DOWNLOAD_ATTEMPTS = 3


class Unavailable(Exception):
    """The database cannot be served right now. The message names the bucket and key: it is for
    the log only. ``cause`` is the fixed word the runtime's error line carries (runtime.failures)."""

    def __init__(self, message: str, *, cause: str = "db-unavailable") -> None:
        super().__init__(message)
        self.cause = cause


class Outcome(enum.Enum):
    SYNCED = "synced"
    CONFLICT = "conflict"
    FAILED = "failed"


class Replica:
    """Keeps one local SQLite file and one S3 object in step for one environment."""

    def __init__(self, config: Config, store: ObjectStore, *,
                 free_bytes: Callable[[str], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self.etag: str | None = None
        self.dirty = False
        self.last_failure = ""  # why the last sync failed, for the error line of the answer it affects
        self._free_bytes = free_bytes
        self._clock = clock
        self._watcher: ChangeWatcher | None = None
        self._last_sync = clock()

    # -- cold start -----------------------------------------------------------------------

    def restore(self) -> None:
        """Cold start: fetch the object into DB_PATH (or start empty if there is none)."""
        os.makedirs(os.path.dirname(self.config.db_path), exist_ok=True)
        self._set_aside_local_copy()
        remote = self._probe(None)
        if remote is None:
            log.info("no database object at %s yet: starting with an empty database at %s",
                     self.store.where, self.config.db_path)
        else:
            self._require_space(2 * remote.size, what=f"restoring {self.store.where} ({remote.size} bytes) "
                                                      f"and snapshotting it for sync")
            remote = self._download_validated(remote)
            os.replace(self.config.download_path, self.config.db_path)
            log.info("restored %s (ETag %s, %d bytes) to %s", self.store.where, remote.etag, remote.size,
                     self.config.db_path)
        self.etag = remote.etag if remote else None
        self._watcher = ChangeWatcher(self.config.db_path)
        self._last_sync = self._clock()
        self._save_state()

    def _set_aside_local_copy(self) -> None:
        """A database already at DB_PATH is replaced by S3's. It is deleted only when the state file
        proves it is an unchanged copy of this very object; otherwise it is kept aside."""
        if os.path.exists(self.config.db_path):
            previous = state.load(self.config.state_path)
            ours = previous is not None and (previous.bucket, previous.key, previous.db_path) == (
                self.config.bucket, self.config.key, self.config.db_path)
            if not ours or previous.unsynced():
                kept = f"{self.config.db_path}.replaced-{int(time.time())}"
                os.replace(self.config.db_path, kept)
                for suffix in ("-wal", "-shm"):
                    if os.path.exists(self.config.db_path + suffix):
                        os.replace(self.config.db_path + suffix, kept + suffix)
                log.warning("%s held a database that S3 may not have (%s); moved it to %s — the runtime "
                            "uses S3's version", self.config.db_path,
                            "unsynced changes" if ours else "not restored by this runtime", kept)
        for path in (self.config.db_path, self.config.download_path, self.config.snapshot_path):
            database.remove(path)

    # -- freshness ------------------------------------------------------------------------

    def refresh(self, *, after_conflict: bool = False) -> bool:
        """Load a newer version if another environment wrote one; True if it did."""
        remote = self._probe(self.etag)
        if remote is UNCHANGED:
            return False
        if remote is None:
            if self.etag is None:
                return False
            raise Unavailable(f"the database object {self.store.where} was deleted while this environment "
                              f"was serving it; refusing to recreate it from a local copy — restore the object "
                              f"(e.g. from a previous S3 version) or redeploy to start empty", cause="db-deleted")
        if self.dirty and not after_conflict:
            log.warning("another environment wrote %s (ETag %s); unsynced changes made by reads in this "
                        "environment are discarded in favour of it", self.store.where, remote.etag)
        self._require_space(remote.size + max(0, remote.size - database.file_size(self.config.db_path)),
                            what=f"loading the newer version of {self.store.where} ({remote.size} bytes)")
        remote = self._download_validated(remote)
        try:
            database.load_into(self._watcher.connection, self.config.download_path)
        except DatabaseError as error:
            raise Unavailable(str(error)) from None
        finally:
            database.remove(self.config.download_path)
        self.etag = remote.etag
        self._mark_synced(self._watcher.version())
        log.info("loaded the newer version of %s (ETag %s, %d bytes) written by another environment",
                 self.store.where, remote.etag, remote.size)
        return True

    # -- change detection and sync --------------------------------------------------------

    def version(self) -> int:
        """The live database's data_version: compare two readings to see whether a commit happened between."""
        return self._watcher.version()

    def note_changes(self) -> bool:
        """After a request: record whether the app committed since the last sync. Cheap: one pragma."""
        dirty = self._watcher.changed_since_sync()
        if dirty != self.dirty:
            self.dirty = dirty
            self._save_state()
        return dirty

    def sync_due(self, *, write: bool) -> bool:
        """Writes sync at once; changes made by reads once SYNC_INTERVAL has passed since the last sync."""
        return self.dirty and (write or self._clock() - self._last_sync >= self.config.sync_interval)

    def sync(self) -> Outcome:
        """Snapshot the live database and upload it conditionally."""
        version = self._watcher.version()
        try:
            database.require_space(os.path.dirname(self.config.db_path), database.file_size(self.config.db_path),
                                   what="snapshotting the database for sync", free_bytes=self._free_bytes)
            database.snapshot(self._watcher.connection, self.config.snapshot_path)
            etag = self.store.upload(self.config.snapshot_path, expected_etag=self.etag)
        except Conflict as error:
            log.error("sync refused, nothing overwritten: %s", error)
            return Outcome.CONFLICT
        except (StoreError, DatabaseError, sqlite3.Error, OSError) as error:
            log.error("sync of %s failed; the change stays unsynced and is retried on the next request "
                      "or at shutdown: %s", self.store.where, error)
            self.last_failure = f"sync of {self.store.where} failed: {error}"
            return Outcome.FAILED
        finally:
            database.remove(self.config.snapshot_path)
        log.info("synced %s (ETag %s -> %s)", self.store.where, self.etag, etag)
        self.etag = etag
        self._mark_synced(version)
        return Outcome.SYNCED

    def _mark_synced(self, version: int) -> None:
        """S3 now holds the contents as of ``version``; later commits (if any) stay dirty."""
        self._watcher.synced_version = version
        self._last_sync = self._clock()
        self._save_state(dirty_check=True)

    # -- helpers --------------------------------------------------------------------------

    def _probe(self, etag: str | None) -> Remote | object | None:
        try:
            return self.store.probe(etag)
        except StoreError as error:
            raise Unavailable(str(error), cause=_store_cause(error)) from None

    def _download_validated(self, remote: Remote) -> Remote:
        """Download ``remote`` (re-probing if it changes underway) and check it is a sound database."""
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                self.store.download(remote, self.config.download_path)
                break
            except Conflict:
                fresh = self._probe(None)
                if fresh is None:
                    raise Unavailable(f"{self.store.where} was deleted while it was being downloaded",
                                      cause="db-deleted") from None
                if attempt == DOWNLOAD_ATTEMPTS - 1:
                    raise Unavailable(f"{self.store.where} kept changing while it was being downloaded") from None
                remote = fresh
            except StoreError as error:
                raise Unavailable(str(error), cause=_store_cause(error)) from None
        try:
            database.validate(self.config.download_path, label=f"{self.store.where} (ETag {remote.etag})")
        except DatabaseError as error:
            database.remove(self.config.download_path)
            raise Unavailable(f"{error} — the object was left untouched; restore a good version of it "
                              f"(e.g. from S3 versioning) and retry", cause="db-corrupt") from None
        return remote

    def _require_space(self, needed: int, *, what: str) -> None:
        try:
            database.require_space(os.path.dirname(self.config.db_path), needed, what=what,
                                   free_bytes=self._free_bytes)
        except DatabaseError as error:
            raise Unavailable(str(error)) from None

    def _save_state(self, *, dirty_check: bool = False) -> None:
        # Fingerprint first, then re-check: a commit in between is caught by one or the other.
        marks = state.fingerprint(self.config.db_path)
        if dirty_check:
            self.dirty = self._watcher.changed_since_sync()
        state.SyncState(bucket=self.config.bucket, key=self.config.key, db_path=self.config.db_path,
                        etag=self.etag, dirty=self.dirty, fingerprint=marks).save(self.config.state_path)

    def close(self) -> None:
        if self._watcher:
            self._watcher.close()
            self._watcher = None


def final_sync(config: Config, store: ObjectStore) -> Outcome | None:
    """Shutdown: upload what the runtime left unsynced in /tmp, from its state file alone.

    Used by the Lambda extension (a separate process; the runtime may already be gone). Returns
    None when there was nothing to do.
    """
    saved = state.load(config.state_path)
    if saved is None:
        log.info("final sync: the runtime left no state in %s; nothing to sync", config.state_path)
        return None
    if (saved.bucket, saved.key) != (store.bucket, store.key):
        log.error("final sync: the state in %s belongs to s3://%s/%s, not %s; not uploading",
                  config.state_path, saved.bucket, saved.key, store.where)
        return Outcome.FAILED
    if not saved.unsynced():
        log.info("final sync: every change was already synced (ETag %s)", saved.etag)
        return None
    try:
        source = sqlite3.connect(saved.db_path)
        try:
            database.snapshot(source, config.snapshot_path)
        finally:
            source.close()
        # After closing: if ours was the last connection, closing checkpointed the WAL into the
        # file, which changes the fingerprint without changing the data.
        marks = state.fingerprint(saved.db_path)
        etag = store.upload(config.snapshot_path, expected_etag=saved.etag)
    except Conflict as error:
        log.error("final sync refused, nothing overwritten; the unsynced local changes (made by reads, or "
                  "by writes that were answered as not durable) are dropped in favour of the other writer: %s",
                  error)
        return Outcome.CONFLICT
    except (StoreError, DatabaseError, sqlite3.Error, OSError) as error:
        log.error("final sync failed; the unsynced local changes (made by reads, or by writes that were "
                  "answered as not durable) are lost: %s", error)
        return Outcome.FAILED
    finally:
        database.remove(config.snapshot_path)
    state.SyncState(bucket=saved.bucket, key=saved.key, db_path=saved.db_path, etag=etag,
                    dirty=False, fingerprint=marks).save(config.state_path)
    log.info("final sync: uploaded %s (ETag %s -> %s)", store.where, saved.etag, etag)
    return Outcome.SYNCED


def _store_cause(error: StoreError) -> str:
    """The error line's cause word for an S3 failure."""
    if isinstance(error, BucketMissing):
        return "bucket-missing"
    if isinstance(error, AccessDenied):
        return "s3-denied"
    return "s3-unreachable"
