"""The local database as a replica of what S3 holds: restore, freshness, ship, final sync.

Invariants this module keeps:
- the local file only ever comes from S3 through a checked rebuild (runtime.remote): a corrupt,
  truncated or missing object never turns into an empty database that could later be committed
  over the real one;
- every commit names the manifest version it derives from (If-Match, If-None-Match: * for the
  first), so two environments never silently overwrite each other;
- the shadow (``DB_PATH.shadow``) holds exactly the state at ``head.manifest.txid``, and the
  state file in /tmp names the manifest ETag for the shutdown extension;
- a commit ships only the pages committed since the last one: the WAL's frames after ``_mark``
  (runtime.wal), or a page diff against the shadow when the WAL cannot say (runtime.pages).
"""
from __future__ import annotations

import enum
import logging
import os
import shutil
import socket
import sqlite3
import time
from typing import Callable

from runtime import database, pages, remote, state, wal
from runtime.config import Config
from runtime.database import ChangeWatcher, DatabaseError
from runtime.layout import Delta
from runtime.remote import Corrupt, Head
from runtime.store import UNCHANGED, AccessDenied, BucketMissing, Conflict, Fetched, ObjectStore, Remote, StoreError

log = logging.getLogger(__name__)

# A download or adoption that loses a race with a writer reads the head again this many times.
DOWNLOAD_ATTEMPTS = 3
# More frames than this since the last ship is a bulk change: diff or ship a base instead of
# checksumming each frame in Python (~0.15 ms a frame).
MAX_WAL_FRAMES = 4096
# After a ship, the runtime truncates the WAL itself once it is this large (its pin keeps
# SQLite's own checkpoints from ever completing, so without this the WAL would only grow).
CHECKPOINT_BYTES = 4 * 1024 * 1024


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


def writer_id() -> str:
    """Which environment wrote a commit: Lambda's log stream names the execution environment."""
    return os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME") or f"{socket.gethostname()}:{os.getpid()}"


class Replica:
    """Keeps one local SQLite file and the database in S3 in step for one environment."""

    def __init__(self, config: Config, store: ObjectStore, *,
                 free_bytes: Callable[[str], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self.head = Head(etag=None)
        self.dirty = False
        self.last_failure = ""  # why the last sync failed, for the error line of the answer it affects
        self.writer = writer_id()
        self._free_bytes = free_bytes
        self._clock = clock
        self._watcher: ChangeWatcher | None = None
        self._last_sync = clock()
        self._mark: wal.Mark | None = wal.FRESH  # None: the WAL cannot be trusted, diff instead
        self._pinned_version: int | None = None  # data_version when the pin was taken; None: not pinned
        self._must_ship = False  # a write was answered 503: ship at the next request of any kind
        self._shadow_txid: int | None = None  # None: no trustworthy shadow (rebuild from base)
        # Pages changed since the manifest's base (None: unknown): compaction copies the rest.
        self._touched: set[int] | None = None

    @property
    def etag(self) -> str | None:
        return self.head.etag

    @property
    def txid(self) -> int:
        return self.head.manifest.txid if self.head.manifest else 0

    # -- cold start -----------------------------------------------------------------------

    def restore(self) -> None:
        """Cold start: rebuild the database into DB_PATH (or start empty if S3 has none)."""
        os.makedirs(os.path.dirname(self.config.db_path), exist_ok=True)
        self._set_aside_local_copy()
        for attempt in range(DOWNLOAD_ATTEMPTS):
            head = self._read_head(None)
            assert isinstance(head, Head)
            try:
                self._rebuild_shadow(head, have_txid=None, live_copy=True)
                break
            except Conflict:
                if attempt == DOWNLOAD_ATTEMPTS - 1:
                    raise Unavailable(f"{self.store.where} kept changing while it was being restored") from None
        if os.path.exists(self.config.shadow_path):
            if not os.path.exists(self.config.db_path):  # adopted: rebuilt into the shadow alone
                shutil.copyfile(self.config.shadow_path, self.config.db_path)
            log.info("restored %s (ETag %s, txid %d, %d bytes) to %s", self.store.where, self.etag, self.txid,
                     os.path.getsize(self.config.db_path), self.config.db_path)
        else:
            log.info("no database object at %s yet: starting with an empty database at %s",
                     self.store.where, self.config.db_path)
        self._watcher = ChangeWatcher(self.config.db_path)
        self._mark = wal.FRESH
        self._last_sync = self._clock()
        self._save_state()
        self.pin()

    def _rebuild_shadow(self, head: Head, *, have_txid: int | None, live_copy: bool = False) -> None:
        """Make the shadow hold ``head``'s state and adopt ``head`` (a legacy object is adopted first).

        Conflict when the object changed underway (the caller reads the head again)."""
        if head.legacy is not None:
            head = self._adopt(head.legacy)
        elif head.manifest is not None:
            size = head.manifest.page_count * head.manifest.page_size
            if have_txid is None:
                self._require_space(2 * size, what=f"restoring {self.store.where} ({size} bytes) beside its copy")
                target = self.config.download_path
                database.remove(target)
            else:
                target = self.config.shadow_path
            live = self.config.db_path if live_copy else None
            label = f"{self.store.where} (txid {head.manifest.txid})"
            try:
                # One check serves both copies: the same bytes, verified blob by blob.
                touched = remote.materialize(self.store, head.manifest, target, have_txid=have_txid, also=live,
                                             check=(lambda path: database.validate(path, label=label))
                                             if have_txid is None else None)
            except (Corrupt, DatabaseError) as error:
                database.remove(target)
                if live:
                    database.remove(live)
                self._shadow_txid = None
                raise Unavailable(f"{error} — nothing was opened and the object was left untouched; restore a "
                                  f"good version (e.g. from S3 versioning) and retry", cause="db-corrupt") from None
            except StoreError as error:  # deltas are all fetched before any is applied: the shadow is intact
                database.remove(self.config.download_path)
                if live:
                    database.remove(live)
                raise Unavailable(str(error), cause=_store_cause(error)) from None
            except OSError as error:  # e.g. /tmp filled up while writing pages: the file is half done
                database.remove(target)
                if live:
                    database.remove(live)
                self._shadow_txid = None
                raise Unavailable(f"rebuilding {self.store.where} locally failed: {error}") from None
            if have_txid is None:
                os.replace(target, self.config.shadow_path)
                self._touched = touched
            elif self._touched is not None and self.head.manifest is not None \
                    and self.head.manifest.base == head.manifest.base:
                self._touched |= touched
            else:
                self._touched = None
        else:
            database.remove(self.config.shadow_path)
        self.head = head
        self._shadow_txid = self.txid if head.manifest else None

    def _adopt(self, legacy: Fetched) -> Head:
        """A plain SQLite file at the key (today's seed layout, or one a person uploaded): download
        it checked, make it a base, and commit a manifest in its place."""
        self._require_space(3 * legacy.size, what=f"adopting {self.store.where} ({legacy.size} bytes)")
        self._download_legacy(Remote(etag=legacy.etag, size=legacy.size))
        try:
            committed = remote.adopt(self.store, legacy, self.config.download_path, txid=self.txid + 1,
                                     writer=self.writer)
        except Conflict:
            database.remove(self.config.download_path)
            raise
        except StoreError as error:
            database.remove(self.config.download_path)
            raise Unavailable(str(error), cause=_store_cause(error)) from None
        os.replace(self.config.download_path, self.config.shadow_path)
        self._touched = set()
        return Head(etag=committed.etag, manifest=committed.manifest)

    def _download_legacy(self, legacy: Remote) -> None:
        try:
            self.store.download(legacy, self.config.download_path)
        except Conflict:
            raise
        except StoreError as error:
            raise Unavailable(str(error), cause=_store_cause(error)) from None
        try:
            database.validate(self.config.download_path, label=f"{self.store.where} (ETag {legacy.etag})")
        except DatabaseError as error:
            database.remove(self.config.download_path)
            raise Unavailable(f"{error} — the object was left untouched; restore a good version of it "
                              f"(e.g. from S3 versioning) and retry", cause="db-corrupt") from None

    def _set_aside_local_copy(self) -> None:
        """A database already at DB_PATH is replaced by S3's. It is deleted only when the state file
        proves it is an unchanged copy of this very object; otherwise it is kept aside."""
        if os.path.exists(self.config.db_path):
            previous = state.load(self.config.state_path)
            ours = previous is not None and (previous.bucket, previous.key, previous.db_path) == (
                self.config.bucket, self.config.key, self.config.db_path)
            if not ours or previous is None or previous.unsynced():
                kept = f"{self.config.db_path}.replaced-{int(time.time())}"
                os.replace(self.config.db_path, kept)
                for suffix in ("-wal", "-shm"):
                    if os.path.exists(self.config.db_path + suffix):
                        os.replace(self.config.db_path + suffix, kept + suffix)
                log.warning("%s held a database that S3 may not have (%s); moved it to %s — the runtime "
                            "uses S3's version", self.config.db_path,
                            "unsynced changes" if ours else "not restored by this runtime", kept)
        for path in (self.config.db_path, self.config.download_path, self.config.snapshot_path,
                     self.config.shadow_path):
            database.remove(path)

    # -- freshness ------------------------------------------------------------------------

    def refresh(self, *, after_conflict: bool = False) -> bool:
        """Load a newer version if another environment wrote one; True if it did.

        Only what this environment lacks is fetched: the log entries after its txid (or, when
        compaction has folded them away, the newer base)."""
        head = self._read_head(self.head.etag)
        if head is UNCHANGED:
            return False
        assert isinstance(head, Head)
        if head.etag is None:
            if self.head.etag is None:
                return False
            raise Unavailable(f"the database object {self.store.where} was deleted while this environment "
                              f"was serving it; refusing to recreate it from a local copy — restore the object "
                              f"(e.g. from a previous S3 version) or redeploy to start empty", cause="db-deleted")
        if head.manifest is not None and self._shadow_txid == head.manifest.txid:
            # The same state under an ETag we did not know: another environment compacted, or our
            # own commit's answer was lost. Nothing to load.
            if self.head.manifest is None or self.head.manifest.base != head.manifest.base:
                self._touched = None if head.manifest.log else set()
            self.head = head
            self._save_state()
            return False
        if self.dirty and not after_conflict:
            log.warning("another environment wrote %s; unsynced changes made by reads in this environment "
                        "are discarded in favour of it", self.store.where)
        self._unpin()
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                self._rebuild_shadow(head, have_txid=self._shadow_txid if head.legacy is None else None)
                break
            except Conflict:
                if attempt == DOWNLOAD_ATTEMPTS - 1:
                    raise Unavailable(f"{self.store.where} kept changing while it was being loaded") from None
                head = self._read_head(None)
                assert isinstance(head, Head)
        self._load_shadow_into_live()
        self.pin()  # the request's own commits must not be checkpointed out of the WAL before they ship
        log.info("loaded the newer version of %s (txid %d) written by another environment",
                 self.store.where, self.txid)
        return True

    def _load_shadow_into_live(self) -> None:
        assert self._watcher is not None
        try:
            database.load_into(self._watcher.connection, self.config.shadow_path)
        except DatabaseError as error:
            raise Unavailable(str(error)) from None
        version = self._watcher.version()
        # The load wrote every page into the WAL as our own commit: those frames are S3's already.
        self._mark = self._truncate_wal(version) or None
        self._mark_synced(version)

    # -- change detection and shipping ----------------------------------------------------

    def version(self) -> int:
        """The live database's data_version: compare two readings to see whether a commit happened
        between. While pinned it is the reading taken when the pin was."""
        if self._pinned_version is not None:
            return self._pinned_version
        assert self._watcher is not None
        return self._watcher.version()

    def note_changes(self) -> bool:
        """After a request: release the pin and record whether the app committed since the last
        ship. Cheap: one pragma."""
        self._unpin()
        assert self._watcher is not None
        dirty = self._watcher.changed_since_sync()
        if dirty != self.dirty:
            self.dirty = dirty
            self._save_state()
        return dirty

    def sync_due(self, *, write: bool) -> bool:
        """Writes ship at once, as does anything after a write answered 503; changes made by reads
        once SYNC_INTERVAL has passed since the last ship."""
        return self.dirty and (write or self._must_ship or
                               self._clock() - self._last_sync >= self.config.sync_interval)

    def sync(self) -> Outcome:
        """Ship what the app committed since the last ship, as one conditional commit."""
        self._unpin()
        assert self._watcher is not None
        version = self._watcher.version()
        snapshot = None
        try:
            change, new_mark, snapshot = self._changes(version)
            if change is None and snapshot is None:
                self._mark_synced(version)
                return Outcome.SYNCED
            if snapshot is not None and change is None:
                committed = remote.commit_base(self.store, self.head, snapshot, txid=self.txid + 1, writer=self.writer)
            else:
                assert change is not None
                committed = remote.commit_delta(self.store, self.head, change, writer=self.writer)
        except Conflict as error:
            log.error("sync refused, nothing overwritten: %s", error)
            self._discard(snapshot)
            return Outcome.CONFLICT
        except (StoreError, DatabaseError, sqlite3.Error, OSError, ValueError) as error:
            log.error("sync of %s failed; the change stays unsynced and is retried on the next request "
                      "or at shutdown: %s", self.store.where, error)
            self.last_failure = f"sync of {self.store.where} failed: {error}"
            self._must_ship = True
            self._discard(snapshot)
            return Outcome.FAILED
        if snapshot is not None:
            os.replace(snapshot, self.config.shadow_path)
        else:
            assert change is not None
            pages.apply(self.config.shadow_path, change)
        if change is None:
            self._touched = set()  # a new base
        elif self._touched is not None:
            self._touched |= set(change.pages)
        previous = self.head.etag
        self.head = Head(etag=committed.etag, manifest=committed.manifest)
        self._shadow_txid = committed.manifest.txid
        self._mark = new_mark
        if self._mark is None or wal.size(self.config.db_path) > CHECKPOINT_BYTES:
            self._mark = self._truncate_wal(version) or self._mark
        self._must_ship = False
        log.info("synced %s (txid %d, %s; ETag %s -> %s)", self.store.where, self.txid,
                 f"{len(change.pages)} pages" if change is not None else "a new base", previous, committed.etag)
        self._mark_synced(version)
        self._compact_if_due()
        return Outcome.SYNCED

    def _changes(self, version: int) -> tuple[Delta | None, wal.Mark | None, str | None]:
        """(delta, the WAL mark after it, None) from the WAL, or (delta or None, None, snapshot path)
        from a diff against the shadow; (None, mark, None) when nothing changed."""
        txid = self.txid + 1
        if self.head.manifest is not None and self._mark is not None:
            try:
                found = wal.read_committed(wal.wal_path(self.config.db_path), self._mark, max_frames=MAX_WAL_FRAMES)
            except wal.WalReset as reason:
                log.info("shipping by page diff: %s", reason)
            else:
                if found.pages and found.page_size == self.head.manifest.page_size:
                    delta = Delta(txid=txid, page_size=found.page_size, page_count=found.page_count, pages=found.pages)
                    if not self._too_big(delta):
                        return delta, found.mark, None
                elif not found.pages and version == self._watcher_synced():
                    return None, self._mark, None
        snapshot = self.config.snapshot_path
        assert self._watcher is not None
        database.require_space(os.path.dirname(self.config.db_path), database.file_size(self.config.db_path),
                               what="snapshotting the database for sync", free_bytes=self._free_bytes)
        database.snapshot(self._watcher.connection, snapshot)
        if self.head.manifest is None or self._shadow_txid != self.txid:
            return None, None, snapshot  # a first base, or no shadow to diff against
        delta = pages.diff(self.config.shadow_path, snapshot, txid=txid)
        if delta.page_size != self.head.manifest.page_size or self._too_big(delta):
            return None, None, snapshot
        if not delta.pages and delta.page_count == self.head.manifest.page_count:
            database.remove(snapshot)
            return None, None, None
        return delta, None, snapshot

    def _too_big(self, delta: Delta) -> bool:
        size = max(delta.page_count, 1) * delta.page_size
        return len(delta.pages) * delta.page_size > remote.BASE_SHARE * size and size > 1024 * 1024

    def _watcher_synced(self) -> int:
        assert self._watcher is not None
        return self._watcher.synced_version

    def _truncate_wal(self, version: int) -> wal.Mark | None:
        """Checkpoint and truncate the WAL (everything in it is in S3); FRESH if that worked and no
        commit slipped in meanwhile, else None (the next ship diffs)."""
        assert self._watcher is not None
        try:
            busy = self._watcher.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as error:
            log.info("could not truncate the WAL (%s); the next ship diffs pages instead", error)
            return None
        if busy or self._watcher.version() != version:
            return None
        return wal.FRESH

    def _compact_if_due(self) -> None:
        manifest = self.head.manifest
        if manifest is None or not remote.due_for_compaction(manifest, max_entries=self.config.compact_entries):
            return
        try:
            compacted = remote.compact(self.store, self.head, self.config.shadow_path, writer=self.writer,
                                       grace=self.config.gc_grace, history=self.config.history,
                                       touched=self._touched)
        except (StoreError, OSError) as error:
            log.warning("compaction of %s failed (retried after the next write): %s", self.store.where, error)
            return
        if compacted is not None:
            self.head = Head(etag=compacted.etag, manifest=compacted.manifest)
            self._touched = set()
            self._save_state()

    def _discard(self, snapshot: str | None) -> None:
        if snapshot:
            database.remove(snapshot)

    def _mark_synced(self, version: int) -> None:
        """S3 now holds the contents as of ``version``; later commits (if any) stay dirty."""
        assert self._watcher is not None
        self._watcher.synced_version = version
        self._last_sync = self._clock()
        self._save_state(dirty_check=True)

    # -- the pin --------------------------------------------------------------------------

    def pin(self) -> None:
        """Hold a read transaction until the next request ends, so no checkpoint can restart the
        WAL over frames not yet shipped. Only in WAL mode: in rollback mode a reader's lock would
        block the app's writes."""
        if self._pinned_version is not None or self._watcher is None:
            return
        connection = self._watcher.connection
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                return
            version = self._watcher.version()
            connection.execute("BEGIN")
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as error:
            log.info("could not pin the WAL (%s); a restart of it is detected and diffed instead", error)
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            return
        self._pinned_version = version

    def _unpin(self) -> None:
        if self._pinned_version is not None and self._watcher is not None:
            self._watcher.connection.execute("COMMIT")
        self._pinned_version = None

    # -- helpers --------------------------------------------------------------------------

    def _read_head(self, etag: str | None) -> Head | object:
        try:
            return remote.read_head(self.store, etag)
        except StoreError as error:
            raise Unavailable(str(error), cause=_store_cause(error)) from None
        except Corrupt as error:
            raise Unavailable(f"{error} — nothing was opened and the object was left untouched; restore a good "
                              f"version of it (e.g. from S3 versioning) and retry", cause="db-corrupt") from None

    def _require_space(self, needed: int, *, what: str) -> None:
        try:
            database.require_space(os.path.dirname(self.config.db_path), needed, what=what,
                                   free_bytes=self._free_bytes)
        except DatabaseError as error:
            raise Unavailable(str(error)) from None

    def _save_state(self, *, dirty_check: bool = False) -> None:
        # Fingerprint first, then re-check: a commit in between is caught by one or the other.
        marks = state.fingerprint(self.config.db_path)
        if dirty_check and self._watcher is not None and self._pinned_version is None:
            self.dirty = self._watcher.changed_since_sync()
        state.SyncState(bucket=self.config.bucket, key=self.config.key, db_path=self.config.db_path,
                        etag=self.head.etag, dirty=self.dirty, fingerprint=marks).save(self.config.state_path)

    def close(self) -> None:
        if self._watcher:
            self._unpin()
            self._watcher.close()
            self._watcher = None


def final_sync(config: Config, store: ObjectStore) -> Outcome | None:
    """Shutdown: ship what the runtime left unsynced in /tmp, from its state file and shadow alone.

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
        head = remote.read_head(store, None)
        assert isinstance(head, Head)
        if head.etag != saved.etag or head.legacy is not None:
            raise Conflict(f"{store.where} is no longer the version this environment derives from "
                           f"(ETag {saved.etag})")
        source = sqlite3.connect(saved.db_path)
        try:
            database.snapshot(source, config.snapshot_path)
        finally:
            source.close()
        # After closing: if ours was the last connection, closing checkpointed the WAL into the
        # file, which changes the fingerprint without changing the data.
        marks = state.fingerprint(saved.db_path)
        committed = _ship_snapshot(store, head, config)
    except Conflict as error:
        log.error("final sync refused, nothing overwritten; the unsynced local changes (made by reads, or "
                  "by writes that were answered as not durable) are dropped in favour of the other writer: %s",
                  error)
        return Outcome.CONFLICT
    except (StoreError, Corrupt, DatabaseError, sqlite3.Error, OSError, ValueError) as error:
        log.error("final sync failed; the unsynced local changes (made by reads, or by writes that were "
                  "answered as not durable) are lost: %s", error)
        return Outcome.FAILED
    finally:
        database.remove(config.snapshot_path)
    etag = committed.etag if committed else saved.etag
    state.SyncState(bucket=saved.bucket, key=saved.key, db_path=saved.db_path, etag=etag,
                    dirty=False, fingerprint=marks).save(config.state_path)
    if committed is None:
        log.info("final sync: nothing differed from S3's version (ETag %s)", saved.etag)
        return None
    log.info("final sync: uploaded the unsynced changes to %s (ETag %s -> %s)", store.where, saved.etag, etag)
    return Outcome.SYNCED


def _ship_snapshot(store: ObjectStore, head: Head, config: Config) -> remote.Committed | None:
    """Commit the snapshot as a page diff against the shadow (a base when there is none)."""
    writer = writer_id()
    manifest = head.manifest
    if manifest is None or not os.path.exists(config.shadow_path):
        return remote.commit_base(store, head, config.snapshot_path, txid=(manifest.txid if manifest else 0) + 1,
                                  writer=writer)
    if os.path.getsize(config.shadow_path) != manifest.page_count * manifest.page_size:
        # No trustworthy copy to diff against, but the local state derives from this very version
        # (its ETag was checked): the snapshot as a whole is the change.
        return remote.commit_base(store, head, config.snapshot_path, txid=manifest.txid + 1, writer=writer)
    delta = pages.diff(config.shadow_path, config.snapshot_path, txid=manifest.txid + 1)
    if not delta.pages and delta.page_count == manifest.page_count:
        return None
    if delta.page_size != manifest.page_size:
        return remote.commit_base(store, head, config.snapshot_path, txid=manifest.txid + 1, writer=writer)
    return remote.commit_delta(store, head, delta, writer=writer)


def _store_cause(error: StoreError) -> str:
    """The error line's cause word for an S3 failure."""
    if isinstance(error, BucketMissing):
        return "bucket-missing"
    if isinstance(error, AccessDenied):
        return "s3-denied"
    return "s3-unreachable"

