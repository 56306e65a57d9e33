"""`reconcile db`: the live database as one file, read with the runtime's own layout code.

The runtime stores the database as a manifest at `bucket.database_key` plus immutable blobs under
`<database_key>.canvas/` (runtime/layout.py); this module rebuilds the current state from them
with runtime.remote — the same checked rebuild a cold start does — so what a person downloads is
exactly what the next cold start would serve. It only reads: nothing in S3 changes.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Callable

from reconciler.errors import ReconcileError


@dataclass(frozen=True)
class Pulled:
    path: str
    size: int
    txid: int | None  # None: the single-object layout (no manifest yet)
    deltas: int


def default_output(database_key: str) -> str:
    return os.path.basename(database_key.rstrip("/")) or "database.db"


def pull(s3_client: Any, *, bucket: str, key: str, output: str, overwrite: bool = False,
         progress: Callable[[int, int], None] | None = None) -> Pulled:
    """Write the current state of s3://bucket/key to ``output`` as one ordinary SQLite file
    (rollback journal, no -wal beside it) that passed PRAGMA integrity_check.

    ``progress(done, total)`` follows the base's download. The file appears only when complete
    and checked; an existing file is replaced only with ``overwrite``.
    """
    from runtime import database, remote
    from runtime.store import ObjectStore, Remote, StoreError

    if os.path.exists(output) and not overwrite:
        raise ReconcileError(f"{output} already exists; choose another path with -o or pass --force to replace it")
    partial = f"{output}.part"
    store = ObjectStore(bucket=bucket, key=key, multipart_threshold=8 * 1024 * 1024,
                        multipart_chunksize=8 * 1024 * 1024, client=s3_client)
    try:
        head = remote.read_current(store)
        if head.etag is None:
            raise ReconcileError(f"there is no database at s3://{bucket}/{key} yet: the runtime creates it on "
                                 f"the first write")
        database.remove(partial)
        if head.legacy is not None:
            total = head.legacy.size
            store.download(Remote(etag=head.legacy.etag, size=total), partial)
            txid, deltas = None, 0
        else:
            manifest = head.manifest
            assert manifest is not None
            total, done = manifest.base.size, [0]

            def advance(count: int) -> None:
                done[0] += count
                if progress:
                    progress(done[0], total)

            remote.materialize(store, manifest, partial, progress=advance)
            txid, deltas = manifest.txid, len(manifest.log)
        _make_ordinary(partial, label=f"s3://{bucket}/{key}")
        os.replace(partial, output)
    except remote.Corrupt as error:
        raise ReconcileError(f"{error}; nothing was written") from None
    except StoreError as error:
        raise ReconcileError(f"{error}; nothing was written") from None
    finally:
        database.remove(partial)
        store.close()
    return Pulled(path=output, size=os.path.getsize(output), txid=txid, deltas=deltas)


def _make_ordinary(path: str, *, label: str) -> None:
    """Rollback journal mode (one file, as `sqlite3 file` expects), then a full integrity check."""
    try:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = DELETE").fetchone()
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check").fetchall() if row[0] != "ok"]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise ReconcileError(f"{label} did not rebuild into a usable SQLite database: {error}; "
                             f"nothing was written") from None
    if problems:
        raise ReconcileError(f"{label} failed PRAGMA integrity_check ({'; '.join(problems[:5])}); "
                             f"nothing was written")
