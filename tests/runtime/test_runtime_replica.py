"""The replica, called directly: loading a newer version under an open connection, change
detection with PRAGMA data_version, the /tmp space check, the SYNC_INTERVAL rule."""
import logging
import os
import sqlite3

import pytest

from runtime import state
from runtime.config import Config
from runtime.replica import Outcome, Replica, Unavailable
from runtime.store import ObjectStore

MB = 1024 * 1024


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def config(s3, tmp_path):
    return Config(bucket=s3.bucket, key=s3.key, db_path=str(tmp_path / "live" / "db.sqlite"),
                  app_command=("unused",), port=0, ready_path="/", sync_interval=30)


@pytest.fixture
def store(config):
    value = ObjectStore(bucket=config.bucket, key=config.key, multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
    yield value
    value.close()


def make_replica(config, store, **kwargs):
    return Replica(config, store, **kwargs)


def seed(s3, tmp_path, rows):
    path = tmp_path / f"seed-{len(rows)}.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.executemany("INSERT INTO notes VALUES (?)", [(row,) for row in rows])
    connection.commit()
    connection.close()
    return s3.put_file(path)


def app_connection(config):
    connection = sqlite3.connect(config.db_path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    return connection


def test_newer_version_is_loaded_into_the_live_file_under_the_apps_open_connection(s3, config, store, tmp_path):
    seed(s3, tmp_path, ["one"])
    replica = make_replica(config, store)
    replica.restore()
    app = app_connection(config)
    assert app.execute("SELECT text FROM notes").fetchall() == [("one",)]
    inode = os.stat(config.db_path).st_ino

    theirs = s3.edit("INSERT INTO notes VALUES ('two')")
    assert replica.refresh() is True
    assert replica.etag == theirs
    assert app.execute("SELECT text FROM notes").fetchall() == [("one",), ("two",)]  # same connection
    assert os.stat(config.db_path).st_ino == inode  # the file was written into, never replaced
    app.execute("INSERT INTO notes VALUES ('three')")  # and the app can go on writing
    assert replica.note_changes() is True
    assert replica.sync() is Outcome.SYNCED
    assert s3.query("SELECT text FROM notes") == [("one",), ("two",), ("three",)]
    assert replica.refresh() is False  # our own upload is not "newer"
    replica.close()


def test_data_version_moves_on_the_apps_commits_only(s3, config, store, tmp_path):
    seed(s3, tmp_path, ["one"])
    replica = make_replica(config, store)
    replica.restore()
    app = app_connection(config)
    assert replica.note_changes() is False
    app.execute("SELECT * FROM notes").fetchall()
    app.execute("BEGIN")
    app.execute("INSERT INTO notes VALUES ('rolled back')")
    app.execute("ROLLBACK")
    assert replica.note_changes() is False  # reads and rolled-back transactions are not changes
    app.execute("INSERT INTO notes VALUES ('committed')")
    assert replica.note_changes() is True
    assert state.load(config.state_path).dirty is True  # told to the extension at once
    assert replica.sync() is Outcome.SYNCED
    assert replica.dirty is False and state.load(config.state_path).dirty is False
    assert state.load(config.state_path).etag == s3.etag()
    replica.close()


def test_sync_interval_applies_to_reads_only(s3, config, store, tmp_path):
    seed(s3, tmp_path, ["one"])
    clock = Clock()
    replica = make_replica(config, store, clock=clock)
    replica.restore()
    assert replica.sync_due(write=True) is False  # nothing changed: never a write
    app_connection(config).execute("INSERT INTO notes VALUES ('x')")
    replica.note_changes()
    assert replica.sync_due(write=True) is True
    assert replica.sync_due(write=False) is False
    clock.now += 29.9
    assert replica.sync_due(write=False) is False
    clock.now += 0.1
    assert replica.sync_due(write=False) is True
    replica.close()


def test_restore_refuses_a_database_that_will_not_fit_in_tmp(s3, config, store, tmp_path):
    seed(s3, tmp_path, ["x" * 1000] * 1000)  # about 1 MB
    replica = make_replica(config, store, free_bytes=lambda directory: 10 * MB)
    with pytest.raises(Unavailable, match=r"needs 1[89] MB free in .* but only 10 MB is free — raise the function's "
                                          r"ephemeral storage"):
        replica.restore()
    assert not os.path.exists(config.download_path) and not os.path.exists(config.db_path)
    assert state.load(config.state_path) is None


def test_restore_proceeds_when_it_fits(s3, config, store, tmp_path):
    seed(s3, tmp_path, ["x" * 1000] * 1000)
    replica = make_replica(config, store, free_bytes=lambda directory: 20 * MB)
    replica.restore()
    assert sqlite3.connect(config.db_path).execute("SELECT count(*) FROM notes").fetchone() == (1000,)
    replica.close()


def test_a_one_row_write_ships_as_a_delta_without_room_for_a_snapshot(s3, config, store, tmp_path):
    seed(s3, tmp_path, ["one"])
    replica = make_replica(config, store, free_bytes=lambda directory: 1 * MB)
    free_at_start = {"bytes": 100 * MB}
    replica._free_bytes = lambda directory: free_at_start["bytes"]
    replica.restore()
    free_at_start["bytes"] = 1 * MB
    app_connection(config).execute("INSERT INTO notes VALUES ('two')")
    replica.note_changes()
    assert replica.sync() is Outcome.SYNCED
    assert len(s3.manifest().log) == 1  # a delta, not a new base
    assert s3.query("SELECT text FROM notes") == [("one",), ("two",)]
    replica.close()


def test_sync_without_room_for_a_snapshot_fails_clearly_and_stays_dirty(s3, config, store, tmp_path, caplog):
    seed(s3, tmp_path, ["one"])
    free = {"bytes": 100 * MB}
    replica = make_replica(config, store, free_bytes=lambda directory: free["bytes"])
    replica.restore()
    etag = s3.etag()
    app = app_connection(config)
    app.execute("INSERT INTO notes VALUES ('two')")
    replica.note_changes()
    # The app truncates the WAL itself: its frames are gone, so the change must be found by a
    # page diff, which needs a snapshot.
    assert app.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    free["bytes"] = 1 * MB
    with caplog.at_level(logging.ERROR, logger="runtime"):
        assert replica.sync() is Outcome.FAILED
    assert "snapshotting the database for sync needs" in caplog.text
    assert replica.dirty is True and s3.etag() == etag
    free["bytes"] = 100 * MB
    assert replica.sync() is Outcome.SYNCED  # retried later, nothing lost
    assert s3.query("SELECT text FROM notes") == [("one",), ("two",)]
    replica.close()


def test_a_download_that_loses_a_race_probes_again_and_gets_the_newest(s3, config, store, tmp_path):
    first = seed(s3, tmp_path, ["old"])
    gets, newest = [], []

    def overwrite_after_the_probe(request, **_):
        gets.append(request.headers.get("If-Match"))
        if len(gets) == 2:  # the probe saw "old"; the download is about to start
            newest.append(s3.edit("INSERT INTO notes VALUES ('newer')"))

    store.client.meta.events.register("before-send.s3.GetObject", overwrite_after_the_probe)
    replica = make_replica(config, store)
    replica.restore()
    assert gets[1] in (first, first.encode())  # the download asked for the probed version and was refused
    assert newest and replica.etag == s3.etag()  # the newer object, adopted
    assert sqlite3.connect(config.db_path).execute("SELECT text FROM notes").fetchall() == [("old",), ("newer",)]
    replica.close()
