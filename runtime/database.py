"""The local SQLite file: validation, consistent snapshots, live loads, and change detection.

Every copy in or out goes through SQLite's online backup API, never a raw file copy: a copy of a
live database file can be torn (half a transaction, a WAL not yet checkpointed), and replacing
the file under the app's open connection leaves it reading a deleted inode.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from typing import Callable

# How long our writes into the live file (loading a newer version) wait for the app's lock.
BUSY_TIMEOUT_MS = 10_000
# Head-room kept free in /tmp beyond what a copy needs, for the WAL and the app's own writes.
SPACE_MARGIN_BYTES = 16 * 1024 * 1024

SIDE_FILES = ("-wal", "-shm", "-journal")


class DatabaseError(Exception):
    """The database file cannot be used; the message says which file and why."""


class CorruptDatabase(DatabaseError):
    """The file is not a sound SQLite database."""


class NoSpace(DatabaseError):
    """The file will not fit in the local disk (Lambda's /tmp)."""


def validate(path: str, *, label: str) -> None:
    """Raise CorruptDatabase unless ``path`` opens as SQLite and passes ``PRAGMA quick_check``.

    quick_check rather than integrity_check: it finds torn and truncated files in O(N) without
    verifying that indexes match their tables, which would make every cold start O(N log N).
    """
    try:
        connection = sqlite3.connect(path)
        try:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise CorruptDatabase(f"{label} is not a usable SQLite database: {error}") from None
    problems = [row[0] for row in rows if row[0] != "ok"]
    if problems:
        raise CorruptDatabase(f"{label} failed PRAGMA quick_check: {'; '.join(problems[:5])}")


def snapshot(source: sqlite3.Connection, dest: str) -> None:
    """Write a consistent copy of ``source``'s database to ``dest`` (one backup step: one read snapshot)."""
    remove(dest)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()


def load_into(live: sqlite3.Connection, source_path: str) -> None:
    """Replace the live database's contents with ``source_path``'s, under SQLite's locking.

    The app's open connection sees the new contents on its next transaction, as if another
    connection had committed them.
    """
    source = sqlite3.connect(source_path)
    try:
        source.backup(live)
    except sqlite3.Error as error:
        raise DatabaseError(f"could not load the newer version into the live database: {error}") from None
    finally:
        source.close()


class ChangeWatcher:
    """A long-lived, otherwise idle connection whose ``PRAGMA data_version`` moves whenever
    another connection (the app's, in any process) commits. It costs one pragma per request,
    works in WAL mode (unlike the header's change counter) and never reads the data itself."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.synced_version = self.version()

    def version(self) -> int:
        return self.connection.execute("PRAGMA data_version").fetchone()[0]

    def changed_since_sync(self) -> bool:
        return self.version() != self.synced_version

    def close(self) -> None:
        self.connection.close()


def require_space(directory: str, needed: int, *, what: str,
                  free_bytes: Callable[[str], int] | None = None) -> None:
    """Raise NoSpace unless ``needed`` bytes plus a margin are free in ``directory``."""
    free = (free_bytes or disk_free)(directory)
    if free < needed + SPACE_MARGIN_BYTES:
        raise NoSpace(
            f"{what} needs {_mb(needed + SPACE_MARGIN_BYTES)} MB free in {directory} but only {_mb(free)} MB "
            f"is free — raise the function's ephemeral storage (Lambda /tmp) or shrink the database")


def disk_free(directory: str) -> int:
    return shutil.disk_usage(directory).free


def file_size(path: str) -> int:
    """Size of a database with its WAL, the most a snapshot of it can take."""
    return sum(os.path.getsize(path + suffix) for suffix in ("", "-wal") if os.path.exists(path + suffix))


def remove(path: str) -> None:
    """Delete a database file and its side files, if present."""
    for suffix in ("",) + SIDE_FILES:
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


def _mb(size: int) -> int:
    return -(-size // (1024 * 1024))
