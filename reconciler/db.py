"""`reconcile db`: the live database as one file, and a chosen state made current again.

The runtime stores the database as a manifest at `bucket.database_key` plus immutable blobs under
`<database_key>.canvas/` (runtime/layout.py); this module rebuilds a state from them with
runtime.remote — the same checked rebuild a cold start does — so what a person downloads is
exactly what a cold start would serve. `pull` only reads. `restore` and `push` commit a new
base with the runtime's own conditional write (If-Match on the version they showed the person),
so a write that lands meanwhile is never overwritten: they refuse and change nothing. History is
never rewritten: the replaced state stays a version of the key (db_history).
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from reconciler.db_history import Version, written
from reconciler.errors import ReconcileError
from reconciler.timespec import iso


@dataclass(frozen=True)
class Pulled:
    path: str
    size: int
    txid: int | None  # None: the single-object layout (no manifest yet)
    deltas: int


def default_output(database_key: str) -> str:
    return os.path.basename(database_key.rstrip("/")) or "database.db"


def _store(s3_client: Any, bucket: str, key: str) -> Any:
    from runtime.store import ObjectStore

    return ObjectStore(bucket=bucket, key=key, multipart_threshold=8 * 1024 * 1024,
                       multipart_chunksize=8 * 1024 * 1024, client=s3_client)


def pull(s3_client: Any, *, bucket: str, key: str, output: str, overwrite: bool = False,
         progress: Callable[[int, int], None] | None = None, version: Version | None = None) -> Pulled:
    """Write the state of s3://bucket/key — the current one, or ``version``'s — to ``output`` as one
    ordinary SQLite file (rollback journal, no -wal beside it) that passed PRAGMA integrity_check.

    ``progress(done, total)`` follows the base's download. The file appears only when complete
    and checked; an existing file is replaced only with ``overwrite``.
    """
    if os.path.exists(output) and not overwrite:
        raise ReconcileError(f"{output} already exists; choose another path with -o or pass --force to replace it")
    partial = f"{output}.part"
    label = f"s3://{bucket}/{key}" + (f" version {version.version_id}" if version else "")
    store = _store(s3_client, bucket, key)
    try:
        txid, deltas = _rebuild(store, partial, version=version, progress=progress)
        _make_ordinary(partial, label=label)
        os.replace(partial, output)
    except OSError as error:  # a full disk, a directory that is not there, no permission
        raise ReconcileError(f"writing {output}: {error.strerror or error}; nothing was written") from None
    finally:
        _remove(partial)
        store.close()
    return Pulled(path=output, size=os.path.getsize(output), txid=txid, deltas=deltas)


def _rebuild(store: Any, dest: str, *, version: Version | None,
             progress: Callable[[int, int], None] | None = None) -> tuple[int | None, int]:
    """Write the current state (or ``version``'s) to ``dest``: (txid or None for one object, deltas applied)."""
    from runtime import remote
    from runtime.store import Remote, StoreError

    where = f"s3://{store.bucket}/{store.key}"
    _remove(dest)
    try:
        if version is None:
            head = remote.read_current(store)
            if head.etag is None:
                raise ReconcileError(f"there is no database at {where} yet: the runtime creates it on the first write")
            manifest, legacy = head.manifest, head.legacy
        else:
            manifest, legacy = version.manifest, None
            if version.problem:
                raise ReconcileError(f"version {version.version_id} of {where} cannot be read: {version.problem}")
        if manifest is None:
            total = legacy.size if legacy is not None else version.object_size  # type: ignore[union-attr]
            if legacy is not None:
                store.download(Remote(etag=legacy.etag, size=total), dest)
            else:
                assert version is not None
                store.client.download_file(store.bucket, store.key, dest, ExtraArgs={"VersionId": version.version_id})
            return None, 0
        total, done = manifest.base.size, [0]

        def advance(count: int) -> None:
            done[0] += count
            if progress:
                progress(done[0], total)

        try:
            remote.materialize(store, manifest, dest, progress=advance)
        except remote.Corrupt as error:
            if version is not None and "missing" in str(error):
                raise ReconcileError(
                    f"version {version.version_id} ({iso(written(version))}) can no longer be rebuilt: {error}. "
                    f"The runtime keeps a version's blobs for DB_HISTORY_SECONDS (7 days unless set) after it "
                    f"stopped being current; `reconcile db info` says how far back history goes") from None
            raise
        return manifest.txid, len(manifest.log)
    except remote.Corrupt as error:
        raise ReconcileError(f"{error}; nothing was written") from None
    except StoreError as error:
        raise ReconcileError(f"{error}; nothing was written") from None
    except Exception as error:
        if type(error).__name__ != "ClientError":
            raise
        from reconciler.aws import error_code, error_message

        raise ReconcileError(f"reading {where}: {error_code(error)}: {error_message(error)}; nothing was written") \
            from None


def _remove(path: str) -> None:
    from runtime import database

    database.remove(path)


def _make_ordinary(path: str, *, label: str) -> None:
    """Rollback journal mode (one file, as `sqlite3 file` expects), then a full integrity check."""
    _check(path, label=label, ordinary=True)


def _check(path: str, *, label: str, ordinary: bool = False,
           outcome: str = "nothing was written") -> list[tuple[str, int]]:
    """PRAGMA integrity_check (ReconcileError naming ``label`` and ``outcome`` if it fails); the
    tables and their rows."""
    try:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            if ordinary:
                connection.execute("PRAGMA journal_mode = DELETE").fetchone()
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
            names = [] if problems else [name for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            tables = [(name, connection.execute(f'SELECT count(*) FROM "{name.replace(chr(34), chr(34) * 2)}"')
                       .fetchone()[0]) for name in names]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise ReconcileError(f"{label} is not a usable SQLite database: {error}; {outcome}") from None
    if problems:
        raise ReconcileError(f"{label} failed PRAGMA integrity_check ({'; '.join(problems[:5])}); {outcome}")
    return tables


# -- restore and push: a new current state, committed conditionally ---------------------------

@dataclass
class Replacement:
    """A checked file ready to become the database's current state, and what it replaces."""

    path: str
    head: Any  # runtime.remote.Head as read before the file was made: the commit's If-Match
    size: int
    tables: list[tuple[str, int]]
    current_size: int | None  # None: there is no database now
    current_txid: int | None
    current_written: datetime | None
    # With no manifest at the key (deleted, or a single object there), the newest manifest version:
    # the commit continues its lineage, so the history before it stays listed and kept.
    lineage: Any = None
    undone_writes: int | None = None  # restore: writes after the chosen version (when both have txids)
    undone_versions: int | None = None  # restore, else: later versions of the key
    undone_since: datetime | None = None


def prepare_restore(s3_client: Any, *, bucket: str, key: str, version: Version, versions: list[Version],
                    workdir: str) -> Replacement:
    """Rebuild ``version``'s state into ``workdir`` and say what making it current undoes."""
    store = _store(s3_client, bucket, key)
    try:
        head = _read_head(store)
        path = os.path.join(workdir, "restore.db")
        _rebuild(store, path, version=version)
    except OSError as error:
        raise ReconcileError(f"rebuilding version {version.version_id} in {workdir}: {error.strerror or error}; "
                             f"nothing was changed") from None
    finally:
        store.close()
    tables = _check(path, label=f"version {version.version_id}", outcome="nothing was changed")
    replacement = _replacement(path, head, tables, versions)
    replacement.lineage = _lineage(s3_client, head, versions, bucket=bucket, key=key)
    # The listing is newest first (S3's order, exact even within one second): what precedes it is later.
    position = next((i for i, other in enumerate(versions) if other.version_id == version.version_id), 0)
    newer = [other for other in versions[:position] if not other.deleted]
    writes = head.manifest.txid - version.manifest.txid if head.manifest and version.manifest else 0
    if writes > 0:
        replacement.undone_writes = writes
    else:  # a single-object version (no txid; later ones include the adoption), or a new lineage
        replacement.undone_versions = len(newer)
    replacement.undone_since = written(version)
    return replacement


def prepare_push(s3_client: Any, *, bucket: str, key: str, source: str, workdir: str) -> Replacement:
    """Check ``source`` is a sound SQLite database and copy it (with any -wal beside it) into ``workdir``."""
    try:
        with open(source, "rb") as handle:
            magic = handle.read(16)
    except OSError as error:
        raise ReconcileError(f"{source}: {error.strerror or error}; nothing was changed") from None
    from runtime import layout

    if not layout.is_sqlite(magic):
        raise ReconcileError(f"{source} is not a SQLite database (it does not begin with 'SQLite format 3'); "
                             f"nothing was changed")
    path = os.path.join(workdir, "push.db")
    try:
        # The backup API reads a consistent snapshot, including commits still in a -wal beside it.
        # as_uri() escapes the path: a raw "#" or "?" in it would open (and create) another file.
        original = sqlite3.connect(Path(source).absolute().as_uri() + "?mode=ro", uri=True)
        copy = sqlite3.connect(path)
        try:
            original.backup(copy)
        finally:
            copy.close()
            original.close()
    except sqlite3.DatabaseError as error:
        raise ReconcileError(f"{source} is not a usable SQLite database: {error}; nothing was changed") from None
    except OSError as error:
        raise ReconcileError(f"copying {source}: {error.strerror or error}; nothing was changed") from None
    tables = _check(path, label=source, outcome="nothing was changed")
    store = _store(s3_client, bucket, key)
    try:
        head = _read_head(store)
    finally:
        store.close()
    replacement = _replacement(path, head, tables, None)
    if head.manifest is None:
        from reconciler import db_history

        versions = db_history.list_versions(s3_client, bucket=bucket, key=key)
        replacement.lineage = _lineage(s3_client, head, versions, bucket=bucket, key=key)
    return replacement


def _lineage(s3_client: Any, head: Any, versions: list[Version], *, bucket: str, key: str) -> Any:
    """The newest manifest among the key's versions when the key holds none now, else None."""
    if head.manifest is not None:
        return None
    from reconciler import db_history

    candidates = [version for version in versions if not version.deleted and version.object_size < 4 * 1024 * 1024]
    for start in range(0, min(len(candidates), 64), 16):  # newest first; a few reads at most, in practice one
        for version in db_history.read_versions(s3_client, candidates[start:start + 16], bucket=bucket, key=key):
            if version.manifest is not None:
                return version.manifest
    return None


def _read_head(store: Any) -> Any:
    from runtime import remote
    from runtime.store import StoreError

    try:
        return remote.read_current(store)
    except (remote.Corrupt, StoreError) as error:
        raise ReconcileError(f"{error}; nothing was changed") from None


def _replacement(path: str, head: Any, tables: list[tuple[str, int]], versions: list[Version] | None) -> Replacement:
    manifest = head.manifest
    when: datetime | None
    if manifest is not None:
        size, txid, when = manifest.page_count * manifest.page_size, manifest.txid, _written_at(manifest)
    elif head.legacy is not None:
        size, txid = head.legacy.size, None
        when = versions[0].modified if versions else None
    else:
        size, txid, when = None, None, None
    return Replacement(path=path, head=head, size=os.path.getsize(path), tables=tables, current_size=size,
                       current_txid=txid, current_written=when)


def _written_at(manifest: Any) -> datetime:
    return datetime.fromtimestamp(manifest.written_at, timezone.utc)


def commit(s3_client: Any, replacement: Replacement, *, bucket: str, key: str, writer: str) -> Any:
    """Make the replacement current: a new base under If-Match on the head it was prepared against.

    A write that landed since is never overwritten: this refuses (ReconcileError) and nothing
    changes but an unreferenced blob the runtime's garbage collection deletes.
    """
    from runtime import remote
    from runtime.store import Conflict, StoreError

    head = replacement.head
    store = _store(s3_client, bucket, key)
    try:
        base = head.manifest or replacement.lineage
        txid = (base.txid if base is not None else 0) + 1
        # The old base retires now by this machine's clock, which garbage collection compares with
        # the runtime's: never earlier than what the manifest already records.
        retired_at = max([time.time()] + ([base.written_at] + [old.at for old in base.retired] if base else []))
        return remote.commit_base(store, remote.Head(etag=head.etag, manifest=base), replacement.path, txid=txid,
                                  writer=writer, now=retired_at)
    except Conflict:
        current = _read_head(store)
        moved = (f"txid {current.manifest.txid}, written {iso(_written_at(current.manifest))} by "
                 f"{current.manifest.writer}" if current.manifest is not None else f"ETag {current.etag}")
        raise ReconcileError(f"the database changed while this ran (it is now at {moved}); nothing was replaced, "
                             f"so that write is kept. Run the command again: it will show that write among "
                             f"what it replaces") from None
    except StoreError as error:
        raise ReconcileError(f"{error}; the database was not replaced") from None
    finally:
        store.close()


def writer_label(command: str) -> str:
    """Who made a commit from this machine, as the manifest's writer records it."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"reconcile {command} ({user}@{socket.gethostname()})"
