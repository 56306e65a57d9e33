"""Reading the pages a WAL-mode SQLite database committed since a mark, without SQLite's help.

The WAL file is a 32-byte header and then frames (a 24-byte header + one page). Every frame
carries the header's two salts and a checksum that continues the previous frame's, and a commit
frame carries the database size in pages. So the frames committed since the last ship are the
ones after the mark whose salts match and whose checksum chain holds, up to the last commit
frame: a torn tail (a frame half written, or a transaction not yet committed) is never read as
committed. Anything unexpected — the WAL restarted with new salts, shorter than the mark, a
different page size — is ``WalReset``: the caller then diffs pages instead (see replica.py).

The runtime keeps a read transaction open between requests (replica.py's pin), so no checkpoint
can restart the WAL over frames not yet read; this module does not rely on that, it detects it.
Format: https://www.sqlite.org/fileformat2.html#walformat
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
_MAGIC = (0x377F0682, 0x377F0683)  # the low bit says the checksums' byte order: 1 = big-endian


class WalReset(Exception):
    """The WAL is not the continuation of the mark: the frames since it cannot be read from it."""


@dataclass(frozen=True)
class Mark:
    """How far the WAL has been read: its salts, frames consumed, and the checksum after them.

    ``salts`` None means "a fresh WAL": the next header seen starts a new chain from frame 1
    (after the runtime itself truncated the WAL, or before the app first wrote)."""

    salts: tuple[int, int] | None = None
    frames: int = 0
    checksum: tuple[int, int] = (0, 0)
    page_size: int = 0
    big_endian: bool = False


FRESH = Mark()


@dataclass
class Committed:
    """The last version of every page committed after a mark, and the mark after them."""

    pages: dict[int, bytes] = field(default_factory=dict)
    page_count: int = 0  # the database's size in pages after the last commit read
    page_size: int = 0
    frames: int = 0  # frames read, overwritten pages included
    mark: Mark = FRESH


def read_committed(wal_path: str, mark: Mark, *, max_frames: int | None = None) -> Committed:
    """The pages committed in ``wal_path`` after ``mark``; empty when nothing was committed since.

    Raises WalReset when the WAL does not continue the mark, and when more than ``max_frames``
    frames would have to be read (a bulk change: the caller ships a whole base instead).
    """
    try:
        handle = open(wal_path, "rb")
    except FileNotFoundError:
        if mark.salts is not None and mark.frames:
            raise WalReset(f"{wal_path} is gone but {mark.frames} frames had been read from it") from None
        return Committed(mark=mark)
    with handle:
        header = handle.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            if mark.salts is not None and mark.frames:
                raise WalReset(f"{wal_path} was truncated below the {mark.frames} frames already read")
            return Committed(mark=mark)
        start = _continue(header, mark, wal_path)
        return _read_frames(handle, start, max_frames)


def _continue(header: bytes, mark: Mark, wal_path: str) -> Mark:
    """The mark to read on from: ``mark`` itself, or the header's own when ``mark`` is fresh."""
    magic, _version, page_size, _sequence, salt1, salt2, sum1, sum2 = struct.unpack(">8I", header)
    if magic not in _MAGIC or page_size < 512 or page_size & (page_size - 1):
        raise WalReset(f"{wal_path} has no valid WAL header")
    big_endian = bool(magic & 1)
    if mark.salts is None:
        if checksum(header[:24], (0, 0), big_endian) != (sum1, sum2):
            raise WalReset(f"{wal_path} header checksum does not match")
        return Mark(salts=(salt1, salt2), frames=0, checksum=(sum1, sum2), page_size=page_size,
                    big_endian=big_endian)
    if (salt1, salt2) != mark.salts or page_size != mark.page_size:
        raise WalReset(f"{wal_path} was restarted (new salts) after frame {mark.frames}")
    return mark


def _read_frames(handle, mark: Mark, max_frames: int | None) -> Committed:
    frame_bytes = FRAME_HEADER_BYTES + mark.page_size
    handle.seek(HEADER_BYTES + mark.frames * frame_bytes)
    result = Committed(page_size=mark.page_size, mark=mark)
    pending: dict[int, bytes] = {}
    running, frames = mark.checksum, mark.frames
    while True:
        frame = handle.read(frame_bytes)
        if len(frame) < frame_bytes:
            break  # the end, or a torn tail
        page_number, commit_size, salt1, salt2, sum1, sum2 = struct.unpack(">6I", frame[:FRAME_HEADER_BYTES])
        if (salt1, salt2) != mark.salts:
            break  # a frame left from before the WAL restarted: past the end
        running = checksum(frame[FRAME_HEADER_BYTES:], checksum(frame[:8], running, mark.big_endian),
                           mark.big_endian)
        if running != (sum1, sum2):
            break  # torn or never completed
        frames += 1
        if max_frames is not None and frames - mark.frames > max_frames:
            raise WalReset(f"more than {max_frames} frames were committed since the last ship")
        pending[page_number] = frame[FRAME_HEADER_BYTES:]
        if commit_size:
            result.pages.update(pending)
            pending.clear()
            result.page_count = commit_size
            result.frames = frames - mark.frames
            result.mark = Mark(salts=mark.salts, frames=frames, checksum=running, page_size=mark.page_size,
                               big_endian=mark.big_endian)
    # Pages past the final size were freed by the last commit (VACUUM, auto_vacuum): not part of it.
    if result.page_count:
        result.pages = {number: page for number, page in result.pages.items() if number <= result.page_count}
    return result


def checksum(data: bytes, seed: tuple[int, int], big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes), continuing from ``seed``."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    s1, s2 = seed
    for index in range(0, len(words), 2):
        s1 = (s1 + words[index] + s2) & 0xFFFFFFFF
        s2 = (s2 + words[index + 1] + s1) & 0xFFFFFFFF
    return s1, s2


def wal_path(db_path: str) -> str:
    return db_path + "-wal"


def size(db_path: str) -> int:
    try:
        return os.path.getsize(wal_path(db_path))
    except FileNotFoundError:
        return 0
