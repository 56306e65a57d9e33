"""Page-level work on plain SQLite files: apply a delta, diff two files, the page size.

The shadow (replica.py) is a plain file holding exactly the state S3 holds; these functions are
how it moves forward. They never touch the live database, which only SQLite itself writes.
"""
from __future__ import annotations

import os
import struct

from runtime.layout import Delta

# The fallback diff reads both files in blocks of this many bytes (a multiple of any page size).
_BLOCK = 1 << 20


def page_size_of(path: str) -> int:
    """The page size a SQLite file's header declares (offset 16; 1 means 65536)."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100:
        return 0
    value = struct.unpack(">H", header[16:18])[0]
    return 65536 if value == 1 else value


def apply(path: str, delta: Delta) -> None:
    """Write the delta's pages into the file at ``path`` and cut it to the delta's page count."""
    with open(path, "r+b") as handle:
        for number in sorted(delta.pages):
            if number <= delta.page_count:
                handle.seek((number - 1) * delta.page_size)
                handle.write(delta.pages[number])
        handle.truncate(delta.page_count * delta.page_size)
        handle.flush()
        os.fsync(handle.fileno())


def diff(old_path: str, new_path: str, *, txid: int) -> Delta:
    """The pages of ``new_path`` that differ from ``old_path`` (the page-hash diff fallback).

    O(size) local reads, no S3 traffic: used only when the WAL cannot say what changed.
    """
    page_size = page_size_of(new_path)
    if page_size == 0:
        raise ValueError(f"{new_path} is not a SQLite file")
    new_size = os.path.getsize(new_path)
    delta = Delta(txid=txid, page_size=page_size, page_count=new_size // page_size)
    with open(old_path, "rb") as old, open(new_path, "rb") as new:
        offset = 0
        while True:
            fresh = new.read(_BLOCK)
            if not fresh:
                break
            stale = old.read(len(fresh))
            if fresh != stale:
                for start in range(0, len(fresh), page_size):
                    page = fresh[start:start + page_size]
                    if page != stale[start:start + page_size]:
                        delta.pages[(offset + start) // page_size + 1] = page
            offset += len(fresh)
    return delta
