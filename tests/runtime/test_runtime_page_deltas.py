"""The page-delta layout, driven through the replica against the moto server: what a write ships,
what another environment fetches, the WAL fallbacks, phantom commits, corrupt objects, adoption
of the single-object layout, compaction and garbage collection."""
import logging
import os
import sqlite3
import time

import pytest

from runtime import layout, remote, wal
from runtime.config import Config
from runtime.replica import Outcome, Replica, Unavailable
from runtime.store import ObjectStore

MB = 1024 * 1024


@pytest.fixture
def make(s3, tmp_path):
    """Replicas of the bucket's database, each its own environment with its own DB_PATH."""
    made = []

    def build(name="env", **settings):
        config = Config(bucket=s3.bucket, key=s3.key, db_path=str(tmp_path / name / "db.sqlite"),
                        app_command=("unused",), port=0, ready_path="/", sync_interval=30, **settings)
        store = ObjectStore(bucket=s3.bucket, key=s3.key, multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
        replica = Replica(config, store)
        made.append((replica, store))
        return replica

    yield build
    for replica, store in made:
        replica.close()
        store.close()


def notes_db(path, rows, *, filler=0):
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.executemany("INSERT INTO notes (text) VALUES (?)", [(row,) for row in rows])
    if filler:
        connection.execute("CREATE TABLE filler (blob BLOB)")
        connection.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(4000),)] * filler)
    connection.commit()
    connection.close()
    return path


def app(replica):
    connection = sqlite3.connect(replica.config.db_path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    return connection


def write(replica, connection, sql, params=()):
    """One request's worth: the app commits, the runtime notes it and ships it."""
    connection.execute(sql, params)
    replica.note_changes()
    outcome = replica.sync()
    replica.pin()
    return outcome


def uploads(store):
    """(key, bytes) of every PutObject / UploadPart the store's client sends from now on."""
    seen = []

    def record(params, **_):
        body = params.get("Body", b"")
        seen.append((params["Key"], len(body) if isinstance(body, (bytes, bytearray)) else -1))

    store.client.meta.events.register("before-parameter-build.s3.PutObject", record)
    store.client.meta.events.register("before-parameter-build.s3.UploadPart", record)
    return seen


def gets(store):
    seen = []
    store.client.meta.events.register("before-parameter-build.s3.GetObject",
                                      lambda params, **_: seen.append(params["Key"]))
    return seen


def rows(s3):
    return [text for (text,) in s3.query("SELECT text FROM notes ORDER BY id")]


def test_a_one_row_write_to_a_large_database_ships_a_few_kilobytes(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "big.db", ["one"], filler=2000))  # ~8 MB
    replica = make()
    replica.restore()
    sent = uploads(replica.store)
    assert write(replica, app(replica), "INSERT INTO notes (text) VALUES ('two')") is Outcome.SYNCED
    assert [key for key, _ in sent] == [layout.delta_key(s3.key, 2, s3.manifest().commits[-1]), s3.key]
    assert sum(size for _, size in sent) < 64 * 1024
    assert rows(s3) == ["one", "two"] and s3.integrity() == "ok"


def test_another_environment_fetches_only_the_delta_it_lacks(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "big.db", ["one"], filler=500))
    first, second = make("first"), make("second")
    first.restore()
    second.restore()
    assert write(first, app(first), "INSERT INTO notes (text) VALUES ('two')") is Outcome.SYNCED
    fetched = gets(second.store)
    assert second.refresh() is True
    assert [key for key in fetched if ".canvas/" in key] == [s3.manifest().log[-1].key]  # no base
    assert [text for (text,) in app(second).execute("SELECT text FROM notes ORDER BY id")] == ["one", "two"]


def test_a_torn_wal_tail_is_never_read_as_committed(tmp_path):
    connection = sqlite3.connect(tmp_path / "db", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.execute("CREATE TABLE t (v TEXT)")
    start = wal.read_committed(str(tmp_path / "db-wal"), wal.FRESH).mark
    connection.execute("INSERT INTO t VALUES ('a')")
    whole = wal.read_committed(str(tmp_path / "db-wal"), start)
    connection.execute("INSERT INTO t VALUES ('b')")
    size = os.path.getsize(tmp_path / "db-wal")
    os.truncate(tmp_path / "db-wal", size - 100)  # the last frame half written
    torn = wal.read_committed(str(tmp_path / "db-wal"), start)
    assert torn.mark == whole.mark and torn.pages == whole.pages  # 'b' is not committed yet
    with open(tmp_path / "db-wal", "r+b") as handle:  # a flipped byte inside the first new frame
        handle.seek(wal.HEADER_BYTES + start.frames * (wal.FRAME_HEADER_BYTES + start.page_size) + 200)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert wal.read_committed(str(tmp_path / "db-wal"), start).pages == {}


def test_a_wal_restart_is_detected_and_the_fallback_diff_ships_the_same_state(s3, make, tmp_path, caplog):
    s3.put_database(notes_db(tmp_path / "seed.db", ["one"]))
    replica = make()
    replica.restore()
    connection = app(replica)
    assert write(replica, connection, "INSERT INTO notes (text) VALUES ('two')") is Outcome.SYNCED
    replica.note_changes()  # the pin released, as between two requests' checks
    connection.execute("INSERT INTO notes (text) VALUES ('three')")
    assert connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    connection.execute("INSERT INTO notes (text) VALUES ('four')")  # a new WAL with new salts
    replica.note_changes()
    with caplog.at_level(logging.INFO, logger="runtime"):
        assert replica.sync() is Outcome.SYNCED
    assert "shipping by page diff" in caplog.text
    assert rows(s3) == ["one", "two", "three", "four"]
    live = sqlite3.connect(replica.config.db_path)
    assert list(sqlite3.connect(s3.download()).iterdump()) == list(live.iterdump())


def test_a_database_in_rollback_journal_mode_ships_by_diff(s3, make, tmp_path):
    path = tmp_path / "seed.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.commit()
    connection.close()
    s3.put_database(path)
    replica = make()
    replica.restore()
    rollback = sqlite3.connect(replica.config.db_path, isolation_level=None)
    assert rollback.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert write(replica, rollback, "INSERT INTO notes (text) VALUES ('x')") is Outcome.SYNCED
    assert write(replica, rollback, "INSERT INTO notes (text) VALUES ('y')") is Outcome.SYNCED  # never blocked
    assert rows(s3) == ["x", "y"] and len(s3.manifest().log) == 2


def test_vacuum_ships_the_whole_new_state(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["keep"], filler=600))
    replica = make()
    replica.restore()
    connection = app(replica)
    connection.execute("DROP TABLE filler")
    replica.note_changes()
    assert replica.sync() is Outcome.SYNCED
    assert write(replica, connection, "VACUUM") is Outcome.SYNCED
    assert rows(s3) == ["keep"] and s3.integrity() == "ok"
    assert os.path.getsize(s3.download()) < 100 * 1024  # the freed pages are gone in S3 too


def test_a_lost_answer_to_a_stored_commit_is_recognised_not_answered_409(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["one"]))
    replica = make()
    replica.restore()
    # S3 stores the manifest but the answer is lost; botocore's retry meets our own commit: 412.
    from botocore.exceptions import ConnectionClosedError
    state = {"fired": False}

    def lose_answer(http_response, parsed, model, **_):
        manifest = ".canvas/" not in http_response.url
        if manifest and not state["fired"] and http_response.status_code == 200:
            state["fired"] = True
            raise ConnectionClosedError(endpoint_url="lost")

    replica.store.client.meta.events.register("after-call.s3.PutObject", lose_answer)
    before = s3.writes()
    assert write(replica, app(replica), "INSERT INTO notes (text) VALUES ('two')") is Outcome.SYNCED
    assert state["fired"]
    assert s3.writes() == before + 1  # committed once, not twice
    assert rows(s3) == ["one", "two"]
    assert write(replica, app(replica), "INSERT INTO notes (text) VALUES ('three')") is Outcome.SYNCED
    assert rows(s3) == ["one", "two", "three"]


def test_a_crash_between_the_delta_and_the_commit_acknowledges_nothing_and_the_next_request_ships(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["one"]))
    replica = make()
    replica.restore()
    from botocore.exceptions import EndpointConnectionError

    def unreachable(params, **_):
        if params["Key"] == s3.key:
            raise EndpointConnectionError(endpoint_url="down")

    replica.store.client.meta.events.register("before-parameter-build.s3.PutObject", unreachable)
    connection = app(replica)
    assert write(replica, connection, "INSERT INTO notes (text) VALUES ('two')") is Outcome.FAILED
    assert rows(s3) == ["one"]  # the delta is in S3, unreferenced; nothing acknowledged
    replica.store.client.meta.events.unregister("before-parameter-build.s3.PutObject", unreachable)
    replica.note_changes()
    assert replica.sync_due(write=False) is True  # a read ships it now, not after SYNC_INTERVAL
    assert replica.sync() is Outcome.SYNCED
    assert rows(s3) == ["one", "two"]
    orphans = [key for key, _ in replica.store.list_blobs(layout.blob_prefix(s3.key))
               if key not in s3.manifest().referenced()]
    assert len(orphans) == 1
    remote.collect_garbage(replica.store, s3.manifest(), set(), grace=0, now=1e12)
    assert not [key for key, _ in replica.store.list_blobs(layout.blob_prefix(s3.key))
                if key not in s3.manifest().referenced()]
    assert rows(s3) == ["one", "two"]


def test_two_environments_on_one_version_one_wins_and_the_other_reloads(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["one"]))
    first, second = make("first"), make("second")
    first.restore()
    second.restore()
    assert write(first, app(first), "INSERT INTO notes (text) VALUES ('first')") is Outcome.SYNCED
    assert write(second, app(second), "INSERT INTO notes (text) VALUES ('second')") is Outcome.CONFLICT
    assert second.refresh(after_conflict=True) is True
    assert [t for (t,) in app(second).execute("SELECT text FROM notes ORDER BY id")] == ["one", "first"]
    assert write(second, app(second), "INSERT INTO notes (text) VALUES ('again')") is Outcome.SYNCED
    assert rows(s3) == ["one", "first", "again"]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("which", ["base", "delta"])
def test_a_damaged_base_or_delta_gives_unavailable_and_nothing_is_opened(s3, make, tmp_path, which, damage):
    s3.put_database(notes_db(tmp_path / "seed.db", ["one"]))
    writer = make("writer")
    writer.restore()
    assert write(writer, app(writer), "INSERT INTO notes (text) VALUES ('two')") is Outcome.SYNCED
    manifest = s3.manifest()
    key = manifest.base.key if which == "base" else manifest.log[0].key
    data = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    data = data[: len(data) // 2] if damage == "truncate" else data[:40] + bytes([data[40] ^ 1]) + data[41:]
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=data)
    reader = make("reader")
    with pytest.raises(Unavailable, match="truncated or corrupted") as raised:
        reader.restore()
    assert raised.value.cause == "db-corrupt"
    assert not os.path.exists(reader.config.db_path) and not os.path.exists(reader.config.shadow_path)


def test_the_single_object_database_is_adopted_with_nothing_lost(s3, make, tmp_path):
    original = notes_db(tmp_path / "legacy.db", ["from", "the", "seed"]).read_bytes()
    legacy_etag = s3.put_bytes(original)
    replica = make()
    replica.restore()
    manifest = s3.manifest()
    assert s3.client.get_object(Bucket=s3.bucket, Key=manifest.base.key)["Body"].read() == original
    versions = s3.client.list_object_versions(Bucket=s3.bucket, Prefix=s3.key)["Versions"]
    assert legacy_etag in [v["ETag"] for v in versions if v["Key"] == s3.key]  # still in the key's history
    assert write(replica, app(replica), "INSERT INTO notes (text) VALUES ('new')") is Outcome.SYNCED
    assert rows(s3) == ["from", "the", "seed", "new"]


def test_a_file_a_person_uploads_over_the_manifest_is_adopted_as_the_new_state(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["one"]))
    replica = make()
    replica.restore()
    s3.put_bytes(notes_db(tmp_path / "theirs.db", ["replaced"]).read_bytes())
    assert replica.refresh() is True
    assert [t for (t,) in app(replica).execute("SELECT text FROM notes")] == ["replaced"]
    assert s3.manifest().txid == 2 and rows(s3) == ["replaced"]


def test_compaction_folds_the_log_and_garbage_collection_waits_for_the_grace(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["zero"]))
    replica = make(compact_entries=3, gc_grace=3600, history=0)
    replica.restore()
    connection = app(replica)
    old_manifest = s3.raw()
    for n in range(3):
        assert write(replica, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
    manifest = s3.manifest()
    # Only the old base is listed as retired: the folded deltas' retirement is the base's time.
    assert manifest.log == () and manifest.base.txid == 4 and len(manifest.retired) == 1
    assert rows(s3) == ["zero", "w0", "w1", "w2"]
    # Within the grace, a cold start that read the manifest before compaction still finds its blobs.
    stale = tmp_path / "stale.db"
    remote.materialize(replica.store, layout.decode_manifest(old_manifest, where="old"), str(stale))
    assert sqlite3.connect(stale).execute("SELECT text FROM notes").fetchall() == [("zero",)]
    first_blobs = {key for key, _ in replica.store.list_blobs(layout.blob_prefix(s3.key))} - manifest.referenced()
    assert len(first_blobs) == 3 and all(key.endswith(".delta") for key in first_blobs)
    # Past the grace, the next compaction deletes what was retired: the old base and the deltas
    # folded with it, while the ones folded just now wait out their own grace.
    object.__setattr__(replica.config, "gc_grace", 0.0)  # the test's jump past the grace
    for n in range(3, 6):
        assert write(replica, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
    now = s3.manifest()
    listed = {key for key, _ in replica.store.list_blobs(layout.blob_prefix(s3.key))}
    assert not listed & ({old.key for old in manifest.retired} | first_blobs)
    assert now.referenced() <= listed
    assert {layout.blob_txid(key) for key in listed - now.referenced()} == {5, 6, 7}
    assert rows(s3) == ["zero"] + [f"w{n}" for n in range(6)]


def test_history_keeps_every_version_of_its_window_rebuildable_past_the_grace(s3, make, tmp_path):
    """DB_HISTORY_SECONDS: a manifest version written within it still rebuilds after compactions and
    a zero grace; once the window has passed it, the next compaction deletes its blobs."""
    s3.put_database(notes_db(tmp_path / "seed.db", ["zero"]))
    replica = make(compact_entries=2, gc_grace=0, history=3600)
    replica.restore()
    connection = app(replica)
    versions = []
    for n in range(7):  # three compactions
        assert write(replica, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
        versions.append(s3.raw())
    for n, raw in enumerate(versions):
        rebuilt = tmp_path / f"v{n}.db"
        remote.materialize(replica.store, layout.decode_manifest(raw, where=f"v{n}"), str(rebuilt))
        assert [t for (t,) in sqlite3.connect(rebuilt).execute("SELECT text FROM notes ORDER BY id")] == [
            "zero"] + [f"w{i}" for i in range(n + 1)]
    # One retired entry per compaction (three), each a base: the window grows the manifest by
    # compactions, not by writes.
    assert len(s3.manifest().retired) == 3 and all(layout.is_base(old.key) for old in s3.manifest().retired)
    # Once the window has passed (shortened to a second here), the next compaction deletes every
    # blob only older versions named, and the deltas it folds itself wait out the window.
    object.__setattr__(replica.config, "history", 1.0)
    time.sleep(1.1)
    for n in range(7, 9):
        assert write(replica, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
    current = s3.manifest()
    listed = {key for key, _ in replica.store.list_blobs(layout.blob_prefix(s3.key))}
    assert current.referenced() <= listed
    assert {layout.blob_txid(key) for key in listed - current.referenced()} == {8, 9}
    assert {old.key for old in current.retired} == {layout.decode_manifest(versions[-1], where="v").base.key}
    with pytest.raises(remote.Corrupt, match="missing"):
        remote.materialize(replica.store, layout.decode_manifest(versions[0], where="v0"), str(tmp_path / "x.db"))
    assert rows(s3) == ["zero"] + [f"w{n}" for n in range(9)]


def test_a_stale_environment_thawed_after_compaction_and_gc_loads_the_new_base(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["zero"]))
    stale = make("stale")
    stale.restore()
    busy = make("busy", compact_entries=2, gc_grace=0)
    busy.restore()
    connection = app(busy)
    for n in range(6):
        assert write(busy, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
    assert stale.refresh() is True
    assert [t for (t,) in app(stale).execute("SELECT text FROM notes ORDER BY id")] == ["zero"] + [
        f"w{n}" for n in range(6)]
    assert write(stale, app(stale), "INSERT INTO notes (text) VALUES ('thawed')") is Outcome.SYNCED
    assert rows(s3)[-1] == "thawed"


def test_compaction_that_loses_to_a_writer_changes_nothing(s3, make, tmp_path):
    s3.put_database(notes_db(tmp_path / "seed.db", ["zero"]))
    replica = make()
    replica.restore()
    assert write(replica, app(replica), "INSERT INTO notes (text) VALUES ('a')") is Outcome.SYNCED
    head = replica.head
    s3.edit("INSERT INTO notes (text) VALUES ('theirs')")  # another writer moves on first
    assert remote.compact(replica.store, head, replica.config.shadow_path, writer="t", grace=0, history=0) is None
    assert rows(s3) == ["zero", "a", "theirs"]


# -- through the real runtime (serve mode) ----------------------------------------------------

def test_a_commit_whose_answer_is_lost_is_answered_201_not_409(s3, start_runtime, moto_server):
    """The fault proxy lets S3 store the manifest, then resets the connection; botocore's retry
    meets our own commit (412). The runtime finds its commit id in the manifest and answers 201."""
    from tests.faults import FaultProxy

    with FaultProxy(moto_server) as proxy:
        runtime = start_runtime(AWS_ENDPOINT_URL=proxy.url)
        assert runtime.post_json("/api/tasks", {"title": "first"}).status == 201
        lost = proxy.add("reset_after", service="s3", operation="PutObject", contains=layout.FORMAT, agent=None)
        before = s3.writes()
        response = runtime.post_json("/api/tasks", {"title": "once"})
        assert lost.fired == 1
        assert response.status == 201, response.body
        assert "was stored although its answer said otherwise" in runtime.log()
    assert s3.writes() == before + 1
    assert s3.query("SELECT title FROM tasks ORDER BY id") == [("first",), ("once",)]


def test_writes_across_compactions_survive_kill9_and_a_cold_start_on_an_empty_tmp(s3, start_runtime):
    first = start_runtime(DB_COMPACT_ENTRIES="2")
    for n in range(5):
        assert first.post_json("/api/tasks", {"title": f"t{n}"}).status == 201
    assert "compacted" in first.log()
    first.kill9()
    second = start_runtime()
    answer = second.request("GET", "/api/tasks")
    assert [task["title"] for task in answer.json()] == [f"t{n}" for n in range(5)]
    assert s3.integrity() == "ok"


@pytest.mark.parametrize("point", ["after-delta", "after-manifest"])
def test_kill9_between_the_delta_and_the_commit_or_before_the_answer(s3, start_runtime, moto_server, point):
    """Killed with the delta stored but no manifest: nothing was acknowledged and nothing appears.
    Killed with the manifest stored but no answer sent: the write is committed, exactly once."""
    from tests.faults import FaultProxy

    with FaultProxy(moto_server) as proxy:
        runtime = start_runtime(AWS_ENDPOINT_URL=proxy.url)
        assert runtime.post_json("/api/tasks", {"title": "first"}).status == 201
        held = proxy.add("hold_after", service="s3", operation="PutObject", agent=None, delay=20,
                         contains=".canvas/log/" if point == "after-delta" else layout.FORMAT)
        before = s3.writes()
        import threading
        answer = {}
        request = threading.Thread(target=lambda: answer.update(r=_quiet_post(runtime, "maybe")))
        request.start()
        assert held.hit.wait(20)
        runtime.kill9()
        held.cancel()
        request.join(30)
    assert "r" not in answer or answer["r"] is None  # the client never got an acknowledgement
    expected = ["first"] if point == "after-delta" else ["first", "maybe"]
    assert s3.writes() == before + len(expected) - 1
    survivor = start_runtime()
    assert [task["title"] for task in survivor.request("GET", "/api/tasks").json()] == expected
    assert survivor.post_json("/api/tasks", {"title": "next"}).status == 201
    assert s3.query("SELECT title FROM tasks ORDER BY id") == [(t,) for t in expected + ["next"]]


def _quiet_post(runtime, title):
    try:
        return runtime.post_json("/api/tasks", {"title": title})
    except OSError:
        return None


def test_compaction_copies_unchanged_parts_server_side(s3, make, tmp_path, caplog):
    s3.put_database(notes_db(tmp_path / "big.db", ["zero"], filler=6000))  # ~24 MB: three 8 MiB parts
    replica = make(compact_entries=3)
    replica.restore()
    connection = app(replica)
    copies = []
    replica.store.client.meta.events.register("before-parameter-build.s3.UploadPartCopy",
                                              lambda params, **_: copies.append(params["CopySourceRange"]))
    with caplog.at_level(logging.INFO, logger="runtime"):
        for n in range(3):
            assert write(replica, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
    assert copies, "no part was copied server-side"
    assert "copied server-side" in caplog.text
    manifest = s3.manifest()
    assert manifest.log == () and manifest.base.txid == 4
    fresh = make("fresh")
    fresh.restore()  # checks the composed base's sha256 against the manifest
    assert [t for (t,) in app(fresh).execute("SELECT text FROM notes ORDER BY id")] == ["zero", "w0", "w1", "w2"]
    assert s3.integrity() == "ok"


def test_a_write_answered_503_is_shipped_by_the_next_request_of_any_kind(s3, start_runtime, moto_server):
    from tests.faults import FaultProxy

    with FaultProxy(moto_server) as proxy:
        runtime = start_runtime(AWS_ENDPOINT_URL=proxy.url)  # SYNC_INTERVAL is 30 s here
        assert runtime.post_json("/api/tasks", {"title": "first"}).status == 201
        down = proxy.add("server_error", service="s3", operation="PutObject", agent=None, status=503,
                         contains=layout.FORMAT, times=10)
        response = runtime.post_json("/api/tasks", {"title": "pending"})
        assert response.status == 503 and down.fired >= 1
        assert s3.query("SELECT title FROM tasks ORDER BY id") == [("first",)]
        down.cancel()
        proxy.clear()
        assert runtime.request("GET", "/api/tasks").status == 200  # a read, well within SYNC_INTERVAL
    assert s3.query("SELECT title FROM tasks ORDER BY id") == [("first",), ("pending",)]


def test_blobs_of_a_lineage_the_manifest_no_longer_lists_are_kept_for_the_history_window(s3, make, tmp_path):
    """The key deleted and a fresh database started: the new manifest lists none of the old
    blobs, so garbage collection cannot tell them from orphans and keeps them DB_HISTORY_SECONDS
    after they were written (the old versions stay rebuildable), deleting them only after that."""
    s3.put_database(notes_db(tmp_path / "seed.db", ["zero"]))
    old = make("old", compact_entries=2, gc_grace=0, history=3600)
    old.restore()
    connection = app(old)
    for n in range(3):
        assert write(old, connection, "INSERT INTO notes (text) VALUES (?)", (f"w{n}",)) is Outcome.SYNCED
    old_version = s3.raw()
    s3.client.delete_object(Bucket=s3.bucket, Key=s3.key)
    fresh = make("fresh", compact_entries=2, gc_grace=0, history=3600)
    fresh.restore()  # no database: starts empty, and its first write is a new lineage's base
    fresh_app = app(fresh)
    fresh_app.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    assert write(fresh, fresh_app, "INSERT INTO notes (text) VALUES ('new')") is Outcome.SYNCED
    manifest = s3.manifest()
    old_blobs = layout.decode_manifest(old_version, where="old").referenced()
    assert not old_blobs & manifest.referenced()
    remote.collect_garbage(fresh.store, manifest, set(), grace=0, keep=3600, now=time.time())
    listed = {key for key, _ in fresh.store.list_blobs(layout.blob_prefix(s3.key))}
    assert old_blobs <= listed
    rebuilt = tmp_path / "old.db"
    remote.materialize(fresh.store, layout.decode_manifest(old_version, where="old"), str(rebuilt))
    assert [t for (t,) in sqlite3.connect(rebuilt).execute("SELECT text FROM notes ORDER BY id")] == [
        "zero", "w0", "w1", "w2"]
    remote.collect_garbage(fresh.store, manifest, set(), grace=0, keep=3600, now=time.time() + 3601)
    listed = {key for key, _ in fresh.store.list_blobs(layout.blob_prefix(s3.key))}
    assert not old_blobs & listed and manifest.referenced() <= listed
