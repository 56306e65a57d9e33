"""The sync state the runtime leaves in /tmp for the shutdown extension, a separate process.

One small JSON file, replaced atomically (write + rename) whenever it changes, so the extension
never reads half of it. It records which object version the local file came from or was last
uploaded as (the ETag the final sync must name in If-Match), whether the runtime knows of
unsynced changes, and a fingerprint of the database files at that moment: a commit the runtime
could not see (the app writing after the last request's check) changes the fingerprint.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)


@dataclass
class SyncState:
    bucket: str
    key: str
    db_path: str
    etag: str | None = None
    dirty: bool = False
    fingerprint: list[list[int]] = field(default_factory=list)

    def save(self, path: str) -> None:
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle)
        os.replace(temporary, path)

    def unsynced(self) -> bool:
        """Changes exist that S3 may not have: known to the runtime, or made behind its back."""
        return self.dirty or fingerprint(self.db_path) != self.fingerprint


def load(path: str) -> SyncState | None:
    """The saved state; None when there is none (the runtime never restored the database) or it
    is unreadable (then nothing can be trusted about the local file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return SyncState(**json.load(handle))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        log.warning("ignoring unreadable sync state %s: %s", path, error)
        return None


def fingerprint(db_path: str) -> list[list[int]]:
    """(mtime_ns, size) of the database file and its WAL: any commit changes one of them.

    The -shm file is left out on purpose: readers write to it too.
    """
    marks = []
    for suffix in ("", "-wal"):
        try:
            stat = os.stat(db_path + suffix)
            marks.append([stat.st_mtime_ns, stat.st_size])
        except FileNotFoundError:
            marks.append([0, 0])
    return marks
