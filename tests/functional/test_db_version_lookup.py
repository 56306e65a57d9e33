"""db_history against moto in process: which version is in force at a time, to the millisecond,
and what deletion, delete markers and foreign objects at the key look like."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from reconciler import db_history
from reconciler.errors import ReconcileError
from runtime import layout

BUCKET, KEY = "history-db", "database/app.db"


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def put_manifest(s3, txid: int, written_at: float) -> str:
    blob = layout.Blob(key=layout.base_key(KEY, txid, "c0ffee"), txid=txid, size=4096, sha256="0" * 64)
    manifest = layout.first_manifest(blob, page_size=4096, page_count=1, commit_id=f"c{txid}", writer=f"env{txid}")
    body = layout.Manifest(**{**manifest.__dict__, "written_at": written_at}).encode()
    return s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)["VersionId"]


def test_at_time_tells_apart_versions_written_in_the_same_second(s3):
    base = time.time() - 1  # S3's LastModified (whole seconds) lies within a second or two of these
    ids = [put_manifest(s3, txid, base + txid * 0.2) for txid in (1, 2, 3)]
    versions = db_history.list_versions(s3, bucket=BUCKET, key=KEY)
    assert [v.version_id for v in versions] == ids[::-1]
    between = datetime.fromtimestamp(base + 0.5, timezone.utc)  # after txid 2's write, before txid 3's
    chosen = db_history.at_time(s3, versions, between, bucket=BUCKET, key=KEY, label="--at")
    assert chosen.version_id == ids[1] and chosen.txid == 2 and chosen.writer == "env2"
    first = datetime.fromtimestamp(base + 0.1, timezone.utc)
    with pytest.raises(ReconcileError, match="before the database's first version"):
        db_history.at_time(s3, versions, first, bucket=BUCKET, key=KEY, label="--at")


def test_a_delete_marker_is_a_version_with_no_database(s3):
    put_manifest(s3, 1, time.time() - 5)
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    versions = db_history.list_versions(s3, bucket=BUCKET, key=KEY)
    assert [v.deleted for v in versions] == [True, False] and versions[0].latest
    with pytest.raises(ReconcileError, match="had been deleted"):
        db_history.at_time(s3, versions, datetime.now(timezone.utc) - timedelta(milliseconds=1),
                           bucket=BUCKET, key=KEY, label="--at")
    with pytest.raises(ReconcileError, match="delete marker"):
        db_history.by_id(versions, versions[0].version_id)


def test_blobs_under_the_key_are_not_versions_and_foreign_bodies_are_named(s3):
    put_manifest(s3, 1, time.time() - 5)
    s3.put_object(Bucket=BUCKET, Key=f"{KEY}.canvas/base/000000000001-c0ffee.db", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"SQLite format 3\x00" + b"\x00" * 100)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b'{"not": "a manifest"}')
    versions = db_history.read_versions(s3, db_history.list_versions(s3, bucket=BUCKET, key=KEY),
                                        bucket=BUCKET, key=KEY)
    assert len(versions) == 3
    foreign, legacy, manifest = versions
    assert foreign.problem and "manifest" in foreign.problem and foreign.size is None
    assert legacy.legacy and legacy.size == 116 and legacy.writer == "(single object)"
    assert manifest.txid == 1
    with pytest.raises(ReconcileError, match="no version 'nope'"):
        db_history.by_id(versions, "nope")


def test_a_single_object_version_is_recognised_from_its_first_bytes_and_a_long_manifest_read_whole(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"SQLite format 3\x00" + b"\x00" * (3 << 20))
    blob = layout.Blob(key=layout.base_key(KEY, 1, "c0ffee"), txid=1, size=4096, sha256="0" * 64)
    long = layout.Manifest(txid=1, page_size=4096, page_count=1, base=blob, writer="w" * (100 << 10),
                           written_at=time.time())
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=long.encode())
    ranges = []
    s3.meta.events.register("before-parameter-build.s3.GetObject",
                            lambda params, **_: ranges.append(params.get("Range")))
    manifest, legacy = db_history.read_versions(s3, db_history.list_versions(s3, bucket=BUCKET, key=KEY),
                                                bucket=BUCKET, key=KEY)
    assert legacy.legacy and legacy.size == 16 + (3 << 20)
    assert manifest.manifest is not None and manifest.writer == "w" * (100 << 10)
    # The first 64 KB of each, then the long manifest whole; never the 3 MB single object.
    assert sorted(ranges, key=str) == sorted(["bytes=0-65535", "bytes=0-65535", None], key=str)


def test_history_seconds_follows_the_function_environment():
    assert db_history.history_seconds({}) == 7 * 24 * 3600
    assert db_history.history_seconds({"DB_HISTORY_SECONDS": "3600"}) == 3600
    assert db_history.history_seconds({"DB_HISTORY_SECONDS": "soon"}) == 7 * 24 * 3600
