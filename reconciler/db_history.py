"""The database's history: the versions of the object at `bucket.database_key`, read and resolved.

With bucket versioning on, every commit the runtime makes leaves the previous manifest (or, before
the page-delta layout adopted it, the previous single SQLite object) as a noncurrent version of
the key; each names the blobs its state is rebuilt from. The runtime keeps those blobs for
DB_HISTORY_SECONDS (runtime/DESIGN.md, "History"), so a version within that window rebuilds
exactly. This module lists versions, reads what each one is and finds the one in force at a
time; it only reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from reconciler.errors import ReconcileError
from reconciler.threads import read_pool
from reconciler.timespec import iso

# A manifest is a few KB (tens just before a compaction); no manifest is bigger than this.
_WHOLE_BODY_BYTES = 4 * 1024 * 1024
_FIRST_BYTES = 64 * 1024
_PARALLEL_GETS = 16
_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class Version:
    """One version of the database key, and what it holds once read (``read_versions``)."""

    version_id: str
    modified: datetime  # S3's LastModified: when this version became current
    object_size: int
    latest: bool
    deleted: bool = False  # a delete marker: no database from then on
    etag: str = ""
    manifest: Any = None  # runtime.layout.Manifest, for a version of the page-delta layout
    legacy: bool = False  # a whole SQLite file (the single-object layout)
    problem: str | None = None  # the version could not be read as either

    @property
    def txid(self) -> int | None:
        return self.manifest.txid if self.manifest is not None else None

    @property
    def size(self) -> int | None:
        """The database's size in this version (not the manifest's)."""
        if self.manifest is not None:
            return int(self.manifest.page_count * self.manifest.page_size)
        return self.object_size if self.legacy else None

    @property
    def writer(self) -> str:
        if self.manifest is not None:
            return str(self.manifest.writer or "")
        return "(single object)" if self.legacy else ""

    def as_json(self) -> dict[str, Any]:
        return {"version_id": self.version_id, "time": iso(written(self), precise=True), "latest": self.latest,
                "deleted": self.deleted, "size": self.size, "txid": self.txid, "writer": self.writer,
                "layout": "deleted" if self.deleted else "manifest" if self.manifest is not None
                else "single-object" if self.legacy else "unreadable",
                "writes_since_compaction": len(self.manifest.log) if self.manifest is not None else None,
                **({"problem": self.problem} if self.problem else {})}


def versioning_enabled(s3: Any, bucket: str) -> bool:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


def list_versions(s3: Any, *, bucket: str, key: str) -> list[Version]:
    """Every version of exactly ``key``, newest first (metadata only: one call per 1,000)."""
    found: list[Version] = []
    # The delimiter rolls the blobs under `<key>.canvas/` up into one common prefix: S3 lists the
    # key's versions without paging through every base and delta beside them.
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": key, "Delimiter": ".canvas/"}
    while True:
        page = s3.list_object_versions(**params)
        entries = [(entry, False) for entry in page.get("Versions", [])] + [
            (entry, True) for entry in page.get("DeleteMarkers", [])]
        # S3 lists each key's versions newest first, delete markers apart: merged by time below,
        # the listing's own order kept among versions of the same (whole) second.
        for entry, marker in entries:
            if entry["Key"] == key:
                found.append(Version(version_id=entry["VersionId"], modified=entry["LastModified"],
                                     object_size=int(entry.get("Size", 0)), latest=bool(entry["IsLatest"]),
                                     deleted=marker, etag=entry.get("ETag", "")))
        # Keys come in order and the blobs (`<key>.canvas/…`) sort after the key itself, so the
        # listing can stop at the first page that reaches past it.
        past = any(entry["Key"] != key for entry, _ in entries)
        if past or not page.get("IsTruncated"):
            break
        params.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    found.sort(key=lambda version: (version.modified, version.latest), reverse=True)  # stable
    return found


def read_versions(s3: Any, versions: list[Version], *, bucket: str, key: str) -> list[Version]:
    """The same versions, each with what it holds (a manifest, a whole SQLite file, or a problem)."""
    def one(version: Version) -> Version:
        if version.deleted:
            return version
        return _read(s3, version, bucket=bucket, key=key)

    if len(versions) <= 1:
        return [one(version) for version in versions]
    with read_pool(min(_PARALLEL_GETS, len(versions))) as pool:
        reads = [pool.submit(one, version) for version in versions]
    return [read.result() for read in reads]


def _read(s3: Any, version: Version, *, bucket: str, key: str) -> Version:
    from dataclasses import replace

    from runtime import layout

    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "VersionId": version.version_id}
    # The first bytes tell a manifest from a whole SQLite file (a single-object version, which
    # is not downloaded for this); a manifest longer than them is then read whole.
    body = s3.get_object(**params, Range=f"bytes=0-{_FIRST_BYTES - 1}")["Body"].read()
    if layout.is_sqlite(body):
        return replace(version, legacy=True)
    if version.object_size > _WHOLE_BODY_BYTES:
        return replace(version, problem="neither a SQLite database nor a manifest (too large to be one)")
    if version.object_size > len(body):
        body = s3.get_object(**params)["Body"].read()
    try:
        return replace(version, manifest=layout.decode_manifest(body, where=f"version {version.version_id}"))
    except layout.LayoutError as error:
        return replace(version, problem=str(error))


def at_time(s3: Any, versions: list[Version], moment: datetime, *, bucket: str, key: str, label: str) -> Version:
    """The version in force at ``moment``: the newest one written at or before it.

    S3's LastModified has whole seconds, too coarse for two writes a second apart; a manifest
    records when it was written to the microsecond, so the versions whose LastModified lies
    within a second or two of ``moment`` are read and placed by that.
    """
    if not versions:
        raise ReconcileError("the database has no versions yet: the runtime creates it on the first write")
    if moment > datetime.now(timezone.utc):
        raise ReconcileError(f"{label} ({iso(moment)}) is in the future; give a past time, e.g. 2h or "
                             f"{iso(versions[0].modified)}")
    close = [version for version in versions
             if moment - _SLACK <= version.modified <= moment + _SLACK and not version.deleted]
    precise = {version.version_id: version for version in read_versions(s3, close, bucket=bucket, key=key)}
    for version in versions:  # newest first
        version = precise.get(version.version_id, version)
        if written(version) <= moment:
            if version.deleted:
                raise ReconcileError(f"at {iso(moment)} the database had been deleted (a delete marker, version "
                                     f"{version.version_id}); choose a time before {iso(version.modified)}")
            return version
    raise ReconcileError(f"{label} ({iso(moment)}) is before the database's first version "
                         f"({iso(written(versions[-1]))}); `reconcile db versions` lists what there is")


def written(version: Version) -> datetime:
    """When a version was written: its manifest's own time when read, else S3's LastModified.

    The manifest's time is the writer's clock just before its PUT, so it is trusted only to order
    versions within S3's whole second: one far from LastModified (a skewed clock, a PUT retried
    for long) gives way to LastModified.
    """
    if version.manifest is not None and version.manifest.written_at:
        own = datetime.fromtimestamp(version.manifest.written_at, timezone.utc)
        if version.modified - _SLACK <= own < version.modified + timedelta(seconds=1):
            return own
    return version.modified


def by_id(versions: list[Version], version_id: str) -> Version:
    for version in versions:
        if version.version_id == version_id:
            if version.deleted:
                raise ReconcileError(f"version {version_id} is a delete marker: it holds no database")
            return version
    raise ReconcileError(f"there is no version {version_id!r} of the database; `reconcile db versions` "
                         f"lists the version ids")


@dataclass(frozen=True)
class Info:
    """What `reconcile db info` shows."""

    location: str
    versioning: bool
    versions: int
    oldest: datetime | None
    history_seconds: float
    current: Version | None  # read; None when there is no database
    deleted: Version | None = None  # the delete marker that is the current version, if one is
    before_deletion: str | None = None  # then the version id of the state before it

    @property
    def reaches_back_to(self) -> datetime | None:
        """The oldest moment a version can be rebuilt from: the oldest version, or the window's
        start when versions are older than the runtime's DB_HISTORY_SECONDS (single-object
        versions older than that still rebuild: they are whole files)."""
        if self.oldest is None:
            return None
        window = datetime.now(timezone.utc) - timedelta(seconds=self.history_seconds)
        return max(self.oldest, window)

    def as_json(self) -> dict[str, Any]:
        back = self.reaches_back_to
        return {"location": self.location, "versioning": self.versioning, "versions": self.versions,
                "oldest_version": iso(self.oldest) if self.oldest else None,
                "history_seconds": self.history_seconds, "history_reaches_back_to": iso(back) if back else None,
                "current": self.current.as_json() if self.current else None,
                "deleted_at": iso(self.deleted.modified) if self.deleted else None,
                "version_before_deletion": self.before_deletion}


def info(s3: Any, *, bucket: str, key: str, history_seconds: float) -> Info:
    versions = list_versions(s3, bucket=bucket, key=key)
    latest = next((version for version in versions if version.latest), None)
    deleted = latest if latest is not None and latest.deleted else None
    current = read_versions(s3, [latest], bucket=bucket, key=key)[0] if latest and not deleted else None
    before = next((version.version_id for version in versions if not version.deleted), None) if deleted else None
    return Info(location=f"s3://{bucket}/{key}", versioning=versioning_enabled(s3, bucket), versions=len(versions),
                oldest=versions[-1].modified if versions else None, history_seconds=history_seconds,
                current=current, deleted=deleted, before_deletion=before)


def history_seconds(environment: dict[str, Any]) -> float:
    """DB_HISTORY_SECONDS as the function's environment in canvas.yaml sets it, else the runtime's default."""
    from runtime.config import HISTORY_SECONDS

    try:
        return float(environment.get("DB_HISTORY_SECONDS", HISTORY_SECONDS))
    except (TypeError, ValueError):
        return HISTORY_SECONDS
