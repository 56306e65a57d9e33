"""The database's layout in S3: one small manifest, immutable bases and page deltas (pure).

```
<key>                               the manifest (JSON): the only object ever overwritten, always
                                    with If-Match, so bucket versioning keeps its history
<key>.canvas/base/<txid>-<id>.db    a complete SQLite file as of txid
<key>.canvas/log/<txid>-<id>.delta  the pages one commit changed (zlib), for exactly one txid
```
The current state is the base with every log entry applied in txid order. Each blob's sha256 and
size are in the manifest and each delta names its own txid, so a restore checks every link of the
chain before it trusts the result. Blobs are never overwritten (fresh keys, If-None-Match: *).
A key that holds a plain SQLite file instead of a manifest is the old single-object layout:
replica.py adopts it as the first base. Why page deltas and not chunks:
../shared/design/page-delta-replication.md and DESIGN.md.
"""
from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field, replace

FORMAT = "canvas-sqlite/1"
SQLITE_MAGIC = b"SQLite format 3\x00"
_DELTA_MAGIC = b"CNVDLT01"
_DELTA_HEADER = struct.Struct(">8sQIII")  # magic, txid, page size, page count after, pages in it
# The manifest remembers this many recent commit ids, so a writer whose answer was lost can find
# its own commit even after compaction folded its log entry into a base.
RECENT_COMMITS = 32


class LayoutError(Exception):
    """An object does not hold what the layout says it must (corrupt, truncated, foreign)."""


def blob_prefix(key: str) -> str:
    return f"{key}.canvas/"


def blob_txid(key: str) -> int | None:
    """The txid a blob's key names (``.../<txid>-<id>.db|.delta``); None for a key of another shape."""
    number = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(number) if number.isdigit() else None


def is_base(key: str) -> bool:
    return key[key.rfind(".canvas/"):].startswith(".canvas/base/")


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def base_key(key: str, txid: int, commit_id: str) -> str:
    return f"{blob_prefix(key)}base/{txid:012d}-{commit_id}.db"


def delta_key(key: str, txid: int, commit_id: str) -> str:
    return f"{blob_prefix(key)}log/{txid:012d}-{commit_id}.delta"


@dataclass(frozen=True)
class Blob:
    key: str
    txid: int
    size: int
    sha256: str


@dataclass(frozen=True)
class Retired:
    """A blob no manifest references any more, since ``at`` (epoch seconds): deletable after the grace."""

    key: str
    at: float


@dataclass(frozen=True)
class Manifest:
    txid: int
    page_size: int
    page_count: int
    base: Blob
    log: tuple[Blob, ...] = ()
    retired: tuple[Retired, ...] = ()
    commits: tuple[str, ...] = ()  # recent commit ids, newest last
    writer: str = ""
    written_at: float = 0.0

    @property
    def log_bytes(self) -> int:
        return sum(entry.size for entry in self.log)

    def referenced(self) -> set[str]:
        return {self.base.key, *(entry.key for entry in self.log), *(old.key for old in self.retired)}

    def with_delta(self, blob: Blob, *, page_count: int, commit_id: str, writer: str) -> "Manifest":
        return replace(self, txid=blob.txid, page_count=page_count, log=self.log + (blob,),
                       commits=_recent(self.commits, commit_id), writer=writer, written_at=time.time())

    def with_base(self, blob: Blob, *, page_size: int, page_count: int, commit_id: str, writer: str,
                  now: float | None = None) -> "Manifest":
        """A new base at ``blob.txid``: the old base retires (listed with the time), and so do the
        log entries the new base contains — those unlisted, so that the manifest stays small
        however long history is kept: when they retired follows from the bases' times (see
        remote.collect_garbage). Later entries stay in the log."""
        now = time.time() if now is None else now
        kept = tuple(entry for entry in self.log if entry.txid > blob.txid)
        return replace(self, txid=max(self.txid, blob.txid), page_size=page_size,
                       page_count=page_count if not kept else self.page_count, base=blob, log=kept,
                       retired=self.retired + (Retired(self.base.key, now),),
                       commits=_recent(self.commits, commit_id), writer=writer, written_at=now)

    def without_retired(self, keys: set[str]) -> "Manifest":
        return replace(self, retired=tuple(old for old in self.retired if old.key not in keys))

    def encode(self) -> bytes:
        body = asdict(self)
        body["format"] = FORMAT
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def first_manifest(blob: Blob, *, page_size: int, page_count: int, commit_id: str, writer: str) -> Manifest:
    return Manifest(txid=blob.txid, page_size=page_size, page_count=page_count, base=blob,
                    commits=(commit_id,), writer=writer, written_at=time.time())


def _recent(commits: tuple[str, ...], commit_id: str) -> tuple[str, ...]:
    return (commits + (commit_id,))[-RECENT_COMMITS:]


def decode_manifest(data: bytes, *, where: str) -> Manifest:
    """Parse a manifest; LayoutError (naming ``where``) if it is not one or its chain has a gap."""
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise LayoutError(f"{where} is neither a SQLite database nor a {FORMAT} manifest")
        manifest = Manifest(
            txid=int(body["txid"]), page_size=int(body["page_size"]), page_count=int(body["page_count"]),
            base=Blob(**body["base"]), log=tuple(Blob(**entry) for entry in body["log"]),
            retired=tuple(Retired(**old) for old in body.get("retired", ())),
            commits=tuple(str(commit) for commit in body.get("commits", ())),
            writer=str(body.get("writer", "")), written_at=float(body.get("written_at", 0.0)))
    except LayoutError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise LayoutError(f"{where} is neither a SQLite database nor a readable manifest: {error}") from None
    expected = manifest.base.txid
    for entry in manifest.log:
        expected += 1
        if entry.txid != expected:
            raise LayoutError(f"{where} has a gap in its log: txid {entry.txid} follows {expected - 1}")
    if expected != manifest.txid:
        raise LayoutError(f"{where} says txid {manifest.txid} but its base and log reach {expected}")
    return manifest


def is_sqlite(data: bytes) -> bool:
    return data.startswith(SQLITE_MAGIC)


# -- page deltas ------------------------------------------------------------------------------

@dataclass
class Delta:
    """The pages one commit changed, and the database's size in pages after it."""

    txid: int
    page_size: int
    page_count: int
    pages: dict[int, bytes] = field(default_factory=dict)


def encode_delta(delta: Delta) -> bytes:
    numbers = sorted(delta.pages)
    raw = b"".join([_DELTA_HEADER.pack(_DELTA_MAGIC, delta.txid, delta.page_size, delta.page_count, len(numbers)),
                    struct.pack(f">{len(numbers)}I", *numbers), *(delta.pages[n] for n in numbers)])
    return zlib.compress(raw, 6)


def decode_delta(data: bytes, blob: Blob) -> Delta:
    """The delta ``blob`` describes; LayoutError if the bytes are not exactly that blob."""
    if len(data) != blob.size or sha256(data) != blob.sha256:
        raise LayoutError(f"{blob.key} is {len(data)} bytes with another checksum than the manifest records "
                          f"({blob.size} bytes): truncated or corrupted")
    try:
        raw = zlib.decompress(data)
        magic, txid, page_size, page_count, count = _DELTA_HEADER.unpack_from(raw)
    except (zlib.error, struct.error) as error:
        raise LayoutError(f"{blob.key} is not a page delta: {error}") from None
    offset = _DELTA_HEADER.size
    if magic != _DELTA_MAGIC or txid != blob.txid or len(raw) != offset + count * (4 + page_size):
        raise LayoutError(f"{blob.key} is not the page delta for txid {blob.txid}")
    numbers = struct.unpack_from(f">{count}I", raw, offset)
    offset += 4 * count
    pages = {number: raw[offset + i * page_size: offset + (i + 1) * page_size] for i, number in enumerate(numbers)}
    return Delta(txid=txid, page_size=page_size, page_count=page_count, pages=pages)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
