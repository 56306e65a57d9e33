"""The database as S3 holds it (runtime.layout): read the head, rebuild a state into a file,
commit a change, compact, collect garbage, adopt a single-object database.

No live database here: these work on plain files, so the runtime, the shutdown extension and
`reconcile db pull` share them. Every commit is a conditional PUT of the manifest (If-Match on the
ETag the change derives from), made only after the blob it references is in S3, so a manifest
never names a missing blob and no environment overwrites a version it has not seen.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from runtime import layout, pages
from runtime.layout import Blob, Delta, LayoutError, Manifest
from runtime.store import UNCHANGED, Conflict, Fetched, ObjectStore, StoreError, _Unchanged

log = logging.getLogger(__name__)

# Log entries are fetched this many at a time (small GETs: latency-bound, not bandwidth-bound).
_PARALLEL_GETS = 16
# A change bigger than this share of the database ships as a new base instead of a delta.
BASE_SHARE = 0.5


class Corrupt(Exception):
    """What S3 holds cannot be rebuilt into a sound database; the message says which object and why."""


@dataclass(frozen=True)
class Head:
    """The object at the database key: a manifest, a single-object (legacy) database, or nothing."""

    etag: str | None
    manifest: Manifest | None = None
    legacy: Fetched | None = None


def read_head(store: ObjectStore, etag: str | None) -> Head | _Unchanged:
    fetched = store.fetch(etag)
    if fetched is UNCHANGED:
        return UNCHANGED
    if fetched is None:
        return Head(etag=None)
    assert isinstance(fetched, Fetched)
    if layout.is_sqlite(fetched.head):
        return Head(etag=fetched.etag, legacy=fetched)
    try:
        return Head(etag=fetched.etag, manifest=layout.decode_manifest(
            fetched.head, where=f"{store.where} (ETag {fetched.etag})"))
    except LayoutError as error:
        raise Corrupt(str(error)) from None


def read_current(store: ObjectStore) -> Head:
    """The head as it is now (an unconditional read)."""
    head = read_head(store, None)
    assert isinstance(head, Head)
    return head


def fetch_deltas(store: ObjectStore, entries: tuple[Blob, ...] | list[Blob]) -> list[Delta]:
    """The log entries' deltas, fetched in parallel and each checked against the manifest."""
    def one(entry: Blob) -> Delta:
        try:
            return layout.decode_delta(store.get_blob(entry.key), entry)
        except LayoutError as error:
            raise Corrupt(str(error)) from None

    if len(entries) <= 1:
        return [one(entry) for entry in entries]
    with ThreadPoolExecutor(max_workers=min(_PARALLEL_GETS, len(entries))) as pool:
        return list(pool.map(one, entries))


def materialize(store: ObjectStore, manifest: Manifest, dest: str, *, progress: Callable[[int], None] | None = None,
                have_txid: int | None = None, also: str | None = None,
                check: Callable[[str], None] | None = None) -> set[int]:
    """Make ``dest`` hold exactly the state at ``manifest.txid``; returns the page numbers the
    applied deltas wrote (what changed since the base, when the base was downloaded).

    With ``have_txid``, ``dest`` already holds that state and only the later log entries are
    fetched (when the log still has them all); otherwise base + log. Every blob is checked
    against the manifest (size, sha256, its own txid) and the result against its page count;
    Corrupt if anything does not match, and then ``dest`` must not be used. Every delta is
    fetched before any is applied, so a failed fetch leaves ``dest`` as it was.

    ``also`` (with a base download): a second file to leave holding the same state. Cold start
    needs two (the live file and the shadow); the copy and the base's checksum run alongside
    the delta fetches, so the second file costs little more than one local copy's time.
    ``check`` (e.g. quick_check) runs on the result before this returns — beside the base's
    checksum when there are no deltas to apply first.
    """
    missing = [entry for entry in manifest.log if have_txid is not None and entry.txid > have_txid]
    targets = [dest]
    if have_txid is not None and (have_txid >= manifest.base.txid and len(missing) == manifest.txid - have_txid):
        deltas = fetch_deltas(store, missing)
    else:
        _download_base(store, manifest.base, dest, progress=progress)
        with ThreadPoolExecutor(max_workers=2) as pool:  # hashlib and the copy release the GIL
            hashed = pool.submit(layout.file_sha256, dest)
            early = check if not manifest.log else None
            copied = pool.submit(_copy_and_check, dest, also, early) if also else None
            try:
                deltas = fetch_deltas(store, manifest.log)
            finally:
                digest = hashed.result()
                if copied:
                    copied.result()
            if early:
                check = None
        if digest != manifest.base.sha256:
            raise Corrupt(f"base s3://{store.bucket}/{manifest.base.key} has another checksum than the manifest "
                          f"records ({manifest.base.size} bytes): truncated or corrupted")
        targets += [also] if also else []
    touched: set[int] = set()
    for delta in deltas:
        for target in targets:
            pages.apply(target, delta)
        touched.update(delta.pages)
    expected = manifest.page_count * manifest.page_size
    for target in targets:
        if os.path.getsize(target) != expected:
            raise Corrupt(f"rebuilding {store.where} at txid {manifest.txid} gave {os.path.getsize(target)} bytes, "
                          f"not the {expected} its manifest records")
    if check:
        check(targets[-1])
    return touched


def _copy_and_check(source: str, copy: str, check: Callable[[str], None] | None) -> None:
    shutil.copyfile(source, copy)
    if check:
        check(copy)


def _download_base(store: ObjectStore, base: Blob, dest: str, *, progress: Callable[[int], None] | None) -> None:
    try:
        store.download_blob(base.key, base.size, dest, progress=progress)
    except StoreError as error:
        if "does not exist" in str(error):
            raise Corrupt(f"{store.where} names base {base.key}, which is missing: {error}") from None
        raise
    size = os.path.getsize(dest)
    if size != base.size:
        raise Corrupt(f"base s3://{store.bucket}/{base.key} is {size} bytes, not the {base.size} the manifest "
                      f"records: truncated or corrupted")


# -- commits ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Committed:
    manifest: Manifest
    etag: str | None  # None when the commit was recognised after a lost answer (read the head again)
    commit_id: str
    phantom: bool = False


def commit_delta(store: ObjectStore, head: Head, delta: Delta, *, writer: str) -> Committed:
    """Upload ``delta`` (for txid head.txid + 1) and commit the manifest that lists it."""
    assert head.manifest is not None
    commit_id = layout.new_id()
    data = layout.encode_delta(delta)
    blob = Blob(key=layout.delta_key(store.key, delta.txid, commit_id), txid=delta.txid, size=len(data),
                sha256=layout.sha256(data))
    store.put_blob(blob.key, data)
    manifest = head.manifest.with_delta(blob, page_count=delta.page_count, commit_id=commit_id, writer=writer)
    return _commit(store, head, manifest, commit_id)


def commit_base(store: ObjectStore, head: Head, path: str, *, txid: int, writer: str,
                now: float | None = None) -> Committed:
    """Upload the file at ``path`` as a new base at ``txid`` and commit the manifest that names it
    (``now``: the time the old base retires, when the caller's clock is not to be trusted alone)."""
    commit_id = layout.new_id()
    blob = Blob(key=layout.base_key(store.key, txid, commit_id), txid=txid, size=os.path.getsize(path),
                sha256=layout.file_sha256(path))
    store.upload_blob(blob.key, path)
    page_size = pages.page_size_of(path)
    page_count = blob.size // page_size if page_size else 0
    if head.manifest is None:
        manifest = layout.first_manifest(blob, page_size=page_size, page_count=page_count, commit_id=commit_id,
                                         writer=writer)
    else:
        manifest = head.manifest.with_base(blob, page_size=page_size, page_count=page_count, commit_id=commit_id,
                                           writer=writer, now=now)
    return _commit(store, head, manifest, commit_id)


def _commit(store: ObjectStore, head: Head, manifest: Manifest, commit_id: str) -> Committed:
    """PUT the manifest with If-Match; a refusal or a lost answer is checked against what S3 holds.

    botocore retries a PUT whose answer was lost; the retry then meets our own commit and gets
    412. Either way the head is read back: if it lists our commit id, we committed (a phantom
    commit, answered as a success); if it is unchanged, the PUT is tried once more; otherwise
    another environment won.
    """
    body = manifest.encode()
    for attempt in range(2):
        try:
            etag = store.put(body, expected_etag=head.etag)
            return Committed(manifest=manifest, etag=etag, commit_id=commit_id)
        except StoreError as error:
            try:
                now = read_head(store, None)
            except (StoreError, Corrupt):
                raise error from None  # the outcome is unknown: not acknowledged, found by the next read
            assert isinstance(now, Head)
            if now.manifest is not None and commit_id in now.manifest.commits:
                log.warning("the commit of %s was stored although its answer said otherwise (%s); not "
                            "committing it again", store.where, error)
                same = now.manifest.txid == manifest.txid
                return Committed(manifest=now.manifest if same else manifest, etag=now.etag if same else None,
                                 commit_id=commit_id, phantom=True)
            if now.etag != head.etag:
                raise Conflict(f"another environment committed first: {error}") from None
            if isinstance(error, Conflict) or attempt:
                raise
    raise AssertionError("unreachable: the second attempt always returns or raises")


# -- adopting a single-object database ------------------------------------------------------

def adopt(store: ObjectStore, legacy: Fetched, local_copy: str, *, txid: int, writer: str) -> Committed:
    """Make the plain SQLite file at the key (``local_copy`` is a validated download of exactly
    that version) the base of a new manifest, which replaces it under If-Match.

    Nothing is lost: the file is first copied server-side to its base key; with bucket
    versioning the replaced object also stays in the key's history.
    """
    commit_id = layout.new_id()
    size = os.path.getsize(local_copy)
    blob = Blob(key=layout.base_key(store.key, txid, commit_id), txid=txid, size=size,
                sha256=layout.file_sha256(local_copy))
    store.copy_to_blob(blob.key, etag=legacy.etag)
    page_size = pages.page_size_of(local_copy)
    manifest = layout.first_manifest(blob, page_size=page_size, page_count=size // page_size if page_size else 0,
                                     commit_id=commit_id, writer=writer)
    etag = store.put(manifest.encode(), expected_etag=legacy.etag)
    log.info("adopted the single-object database at %s (ETag %s, %d bytes) as base %s of the page-delta layout",
             store.where, legacy.etag, size, blob.key)
    return Committed(manifest=manifest, etag=etag, commit_id=commit_id)


# -- compaction and garbage collection -------------------------------------------------------

def due_for_compaction(manifest: Manifest, *, max_entries: int) -> bool:
    """The log is long enough (entries, or bytes beyond a quarter of the base) to fold into a base."""
    return len(manifest.log) >= max_entries or manifest.log_bytes > max(8 * 1024 * 1024, manifest.base.size // 4)


# Compaction composes the new base from parts this large: unchanged ones are copied server-side.
COMPACTION_PART_BYTES = 8 * 1024 * 1024


def compact(store: ObjectStore, head: Head, shadow: str, *, writer: str, grace: float, history: float,
            touched: set[int] | None = None, clock: Callable[[], float] = time.time) -> Committed | None:
    """Fold the log into a new base made from ``shadow`` (the state at head's txid), and delete what
    no manifest version of the last ``history`` seconds names and has been unreferenced for longer
    than ``grace``. None if another writer moved on first: the next writer's compaction will do
    it; nothing is lost either way.

    ``touched``: the pages changed since the current base, when known. Parts of the new base that
    hold none of them are then copied from the old base server-side (UploadPartCopy), so a
    compaction uploads what changed, not the database.
    """
    assert head.manifest is not None
    manifest = head.manifest
    now = clock()
    keep = max(grace, history)
    expired = {old.key for old in manifest.retired if old.at < now - keep}
    # Compaction runs inside the request that made the log long (requests are serialized), so the
    # shadow cannot move while its parts upload: it is uploaded as it is, no staging copy.
    slimmed = Head(etag=head.etag, manifest=manifest.without_retired(expired))
    try:
        composable = (touched is not None and manifest.page_size == pages.page_size_of(shadow)
                      and os.path.getsize(shadow) >= 2 * COMPACTION_PART_BYTES)
        if composable:
            assert touched is not None
            committed, moved = _compose_base(store, slimmed, shadow, touched, writer=writer)
        else:
            committed, moved = commit_base(store, slimmed, shadow, txid=manifest.txid, writer=writer), None
    except Conflict as error:
        log.info("compaction of %s skipped: another writer committed first (%s)", store.where, error)
        return None
    how = f"{moved[0]} bytes uploaded, {moved[1]} copied server-side" if moved else "uploaded whole"
    log.info("compacted %s: %d log entries (%d bytes) folded into a new base at txid %d (%s)", store.where,
             len(manifest.log), manifest.log_bytes, manifest.txid, how)
    collect_garbage(store, committed.manifest, expired, grace=grace, keep=keep, now=now)
    return committed


def _compose_base(store: ObjectStore, head: Head, path: str, touched: set[int], *,
                  writer: str) -> tuple[Committed, tuple[int, int]]:
    assert head.manifest is not None
    manifest = head.manifest
    page_size = manifest.page_size
    dirty_parts = {(number - 1) * page_size // COMPACTION_PART_BYTES for number in touched}
    commit_id = layout.new_id()
    size = os.path.getsize(path)
    blob = Blob(key=layout.base_key(store.key, manifest.txid, commit_id), txid=manifest.txid, size=size,
                sha256=layout.file_sha256(path))
    moved = store.compose_blob(blob.key, path, source_key=manifest.base.key, source_size=manifest.base.size,
                               part_size=COMPACTION_PART_BYTES,
                               clean=lambda start, end: start // COMPACTION_PART_BYTES not in dirty_parts)
    new = manifest.with_base(blob, page_size=page_size, page_count=size // page_size, commit_id=commit_id,
                             writer=writer)
    return _commit(store, head, new, commit_id), moved


def collect_garbage(store: ObjectStore, manifest: Manifest, expired: set[str], *, grace: float, now: float,
                    keep: float | None = None) -> None:
    """Delete the expired retired blobs, the folded deltas no manifest version of the last ``keep``
    seconds names, and the blobs no manifest ever listed (a change whose commit lost) once older
    than the grace. Failures are logged: garbage is only cost.

    A folded delta is not listed anywhere (Manifest.with_base): it was folded when the first base
    at or after its txid was committed, which is when the base before that one retired. So a
    delta is kept while that retired base is younger than ``keep``.

    A base the manifest does not list, or a delta whose folding base it does not list, is one of:
    expired earlier, a commit that lost, or history from before this manifest's lineage began
    (the key deleted, then a fresh database). Which cannot be told here, so such a blob is kept
    for ``keep`` after it was written: storage for a while, never a version of the window lost.
    """
    keep = grace if keep is None else keep
    try:
        referenced = manifest.referenced()
        # Committed bases by txid (strictly increasing in commit order), each with its retirement time.
        bases = sorted([(manifest.base.txid, now)] + [
            (txid, old.at) for old in manifest.retired
            if layout.is_base(old.key) and (txid := layout.blob_txid(old.key)) is not None])
        doomed = set(expired)
        for key, modified in store.list_blobs(layout.blob_prefix(store.key)):
            txid = layout.blob_txid(key)
            if key in referenced or key in expired or txid is None or modified >= now - grace:
                continue
            if not layout.is_base(key):
                folded = next((index for index, (base_txid, _) in enumerate(bases) if base_txid >= txid), None)
                if folded:  # folded by a listed base, when the one before it (listed too) retired
                    if bases[folded - 1][1] < now - keep:
                        doomed.add(key)
                    continue
            if modified < now - keep:
                doomed.add(key)
        if doomed:
            store.delete_blobs(sorted(doomed))
            log.info("garbage collection under %s deleted %d unreferenced objects", store.where, len(doomed))
    except StoreError as error:
        log.warning("garbage collection under %s failed (retried at the next compaction): %s", store.where, error)
