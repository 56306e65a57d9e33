"""`reconcile db pull` as a user runs it: the database the runtime keeps as a manifest, a base and
page deltas (or still as one object) comes back as one ordinary SQLite file, or not at all."""
from __future__ import annotations

import sqlite3

import pytest

from runtime import layout
from tests.e2e.conftest import BUCKET, DB_KEY, commit_rows


def seed_file(path, rows):
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT)")
    connection.executemany("INSERT INTO tasks (title) VALUES (?)", [(row,) for row in rows])
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def environment(replica):
    """The runtime's replica (in process) writing through the page-delta layout, as an app would."""
    return replica()


def titles(path):
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file, no -wal
        return [title for (title,) in connection.execute("SELECT title FROM tasks ORDER BY id")]
    finally:
        connection.close()


def test_pull_writes_the_current_state_of_base_and_deltas(canvas_file, reconcile, bucket, environment, tmp_path):
    bucket.put_object(Bucket=BUCKET, Key=DB_KEY, Body=seed_file(tmp_path / "seed.db", ["alpha"]).read_bytes())
    environment.restore()  # adopts the single object
    commit_rows(environment, ["beta", "gamma"])
    manifest = layout.decode_manifest(bucket.get_object(Bucket=BUCKET, Key=DB_KEY)["Body"].read(), where=DB_KEY)
    assert len(manifest.log) == 2

    run = reconcile("db", "pull", "-o", "copy.db")
    assert run.code == 0, run.err
    assert titles(tmp_path / "copy.db") == ["alpha", "beta", "gamma"]
    assert f"txid {manifest.txid}: the base and 2 page deltas" in run.out
    assert not (tmp_path / "copy.db.part").exists()


def test_pull_of_the_single_object_layout_and_the_default_name(canvas_file, reconcile, bucket, tmp_path):
    bucket.put_object(Bucket=BUCKET, Key=DB_KEY, Body=seed_file(tmp_path / "seed.db", ["only"]).read_bytes())
    run = reconcile("db", "pull")
    assert run.code == 0, run.err
    assert titles(tmp_path / "taskManagement.db") == ["only"]
    assert "the single-object layout" in run.out


def test_pull_refuses_to_replace_a_file_unless_forced(canvas_file, reconcile, bucket, tmp_path):
    bucket.put_object(Bucket=BUCKET, Key=DB_KEY, Body=seed_file(tmp_path / "seed.db", ["x"]).read_bytes())
    (tmp_path / "mine.db").write_bytes(b"precious")
    run = reconcile("db", "pull", "-o", "mine.db")
    assert run.code == 1 and "mine.db already exists" in run.err and "--force" in run.err
    assert "Traceback" not in run.err and (tmp_path / "mine.db").read_bytes() == b"precious"
    assert reconcile("db", "pull", "-o", "mine.db", "--force").code == 0
    assert titles(tmp_path / "mine.db") == ["x"]


def test_pull_without_a_database_says_so(canvas_file, reconcile, bucket, tmp_path):
    run = reconcile("db", "pull", "-o", "none.db")
    assert run.code == 1 and "there is no database at" in run.err and "Traceback" not in run.err
    assert not (tmp_path / "none.db").exists()


def test_pull_of_a_corrupt_delta_writes_nothing(canvas_file, reconcile, bucket, environment, tmp_path):
    bucket.put_object(Bucket=BUCKET, Key=DB_KEY, Body=seed_file(tmp_path / "seed.db", ["alpha"]).read_bytes())
    environment.restore()
    commit_rows(environment, ["beta"])
    manifest = layout.decode_manifest(bucket.get_object(Bucket=BUCKET, Key=DB_KEY)["Body"].read(), where=DB_KEY)
    data = bucket.get_object(Bucket=BUCKET, Key=manifest.log[0].key)["Body"].read()
    bucket.put_object(Bucket=BUCKET, Key=manifest.log[0].key, Body=data[:-3])
    run = reconcile("db", "pull", "-o", "broken.db")
    assert run.code == 1 and "truncated or corrupted" in run.err and "nothing was written" in run.err
    assert "Traceback" not in run.err
    assert not (tmp_path / "broken.db").exists() and not (tmp_path / "broken.db.part").exists()
