"""The database's history as a user works with it: `reconcile db info|versions|pull --at|restore|push`
against moto on loopback, with the real runtime (serve mode, the sample taskboard) writing and
serving — the restore is seen through the app, not only in S3."""
from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from tests.e2e.conftest import BUCKET, DB_KEY, commit_rows, reconcile_command
from tests.runtime.runtime_testkit import TASKBOARD, TASKS_SCHEMA, RuntimeProcess, runtime_environment, wait_for


@pytest.fixture
def serve(bucket, moto_endpoint, tmp_path):
    """Start runtimes serving the taskboard on the contract's bucket and key; all stopped afterwards."""
    started: list[RuntimeProcess] = []

    def start() -> RuntimeProcess:
        home = tmp_path / f"env{len(started) + 1}"
        home.mkdir()
        env = runtime_environment(endpoint=moto_endpoint, bucket=BUCKET, home=home, app=TASKBOARD, S3_DB_KEY=DB_KEY)
        process = RuntimeProcess(env, tmp_path / f"runtime-{len(started) + 1}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


def add(runtime: RuntimeProcess, title: str) -> None:
    response = runtime.post_json("/api/tasks", {"title": title})
    assert response.status == 201, response.body


def titles_served(runtime: RuntimeProcess) -> list[str]:
    response = runtime.request("GET", "/api/tasks")
    assert response.status == 200, response.body
    return [task["title"] for task in response.json()]


def titles_in(path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [title for (title,) in connection.execute("SELECT title FROM tasks ORDER BY id")]
    finally:
        connection.close()


def version_ids(s3) -> list[str]:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=DB_KEY)["Versions"]
    return [entry["VersionId"] for entry in listed if entry["Key"] == DB_KEY]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def test_versions_pull_at_and_restore_while_a_runtime_serves(canvas_file, reconcile, bucket, serve, tmp_path):
    runtime = serve()
    add(runtime, "A")
    time.sleep(0.05)
    after_a = now_iso()
    time.sleep(0.05)
    add(runtime, "B")

    listed = reconcile("db", "versions", "--json")
    assert listed.code == 0, listed.err
    versions = json.loads(listed.out)["versions"]
    assert [v["version_id"] for v in versions] == version_ids(bucket)  # newest first, every one
    assert versions[0]["latest"] and versions[0]["txid"] == versions[1]["txid"] + 1
    text = reconcile("db", "versions")
    assert text.code == 0 and versions[0]["version_id"] in text.out and "(current)" in text.out

    pulled = reconcile("db", "pull", "--at", after_a, "-o", "a.db")
    assert pulled.code == 0, pulled.err
    assert titles_in(tmp_path / "a.db") == ["A"]
    assert reconcile("db", "pull", "-o", "now.db").code == 0
    assert titles_in(tmp_path / "now.db") == ["A", "B"]

    before = version_ids(bucket)
    restored = reconcile("db", "restore", "--at", after_a, "--auto-approve")
    assert restored.code == 0, restored.err
    assert "undoes:  1 write," in restored.out and "tasks (1 row)" in restored.out
    assert f"replaced is version {before[0]}: `reconcile db restore --version {before[0]}` puts it back" \
        in restored.out
    assert version_ids(bucket)[1:] == before  # a new version; history is kept whole

    assert titles_served(runtime) == ["A"]  # the running environment serves it from its next request
    add(runtime, "C")
    assert titles_served(runtime) == ["A", "C"]
    runtime.kill9()
    assert titles_served(serve()) == ["A", "C"]  # a cold start on an empty /tmp

    # The restore is itself undoable: the state it replaced is one version back.
    undo = reconcile("db", "restore", "--version", before[0], "--auto-approve")
    assert undo.code == 0, undo.err
    assert reconcile("db", "pull", "-o", "undone.db").code == 0
    assert titles_in(tmp_path / "undone.db") == ["A", "B"]


def test_info_says_what_the_database_is_and_how_far_back_history_goes(canvas_file, reconcile, bucket, serve):
    runtime = serve()
    for title in ("one", "two", "three"):
        add(runtime, title)
    result = reconcile("db", "info", "--json")
    assert result.code == 0, result.err
    facts = json.loads(result.out)
    assert facts["versioning"] is True and facts["versions"] == len(version_ids(bucket))
    current = facts["current"]
    assert current["latest"] and current["layout"] == "manifest"
    assert current["writes_since_compaction"] == 2  # the first write made the base
    assert current["size"] > 0 and current["writer"]
    assert facts["history_seconds"] == 7 * 24 * 3600  # the runtime's default: the contract does not set it
    assert facts["history_reaches_back_to"] == facts["oldest_version"]
    text = reconcile("db", "info")
    assert text.code == 0
    assert "bucket versioning: on" in text.out and f"txid {current['txid']}" in text.out
    assert "kept 7d: DB_HISTORY_SECONDS" in text.out


def test_versions_since_and_limit(canvas_file, reconcile, bucket, serve):
    runtime = serve()
    add(runtime, "old")
    time.sleep(1.2)
    start = now_iso()
    add(runtime, "new1")
    add(runtime, "new2")
    since = json.loads(reconcile("db", "versions", "--since", start, "--json").out)["versions"]
    assert len(since) == 2 and all(v["time"] >= start[:23] for v in since)
    assert len(json.loads(reconcile("db", "versions", "--limit", "1", "--json").out)["versions"]) == 1
    bad = reconcile("db", "versions", "--since", "yesterday-ish")
    assert bad.code == 1 and "is not a time" in bad.err and "Traceback" not in bad.err


def test_push_replaces_the_database_and_a_running_environment_serves_it(canvas_file, reconcile, bucket, serve,
                                                                        tmp_path):
    runtime = serve()
    add(runtime, "theirs")
    local = tmp_path / "mine.db"
    connection = sqlite3.connect(local)
    connection.execute(TASKS_SCHEMA)
    connection.executemany("INSERT INTO tasks (title) VALUES (?)", [("mine1",), ("mine2",)])
    connection.commit()
    connection.close()
    before = version_ids(bucket)
    pushed = reconcile("db", "push", str(local), "--auto-approve")
    assert pushed.code == 0, pushed.err
    assert "tasks (2 rows)" in pushed.out and f"replaced is version {before[0]}:" in pushed.out
    assert titles_served(runtime) == ["mine1", "mine2"]
    add(runtime, "after")
    assert reconcile("db", "pull", "-o", "now.db").code == 0
    assert titles_in(tmp_path / "now.db") == ["mine1", "mine2", "after"]
    assert version_ids(bucket)[2:] == before


def state(reconcile, tmp_path, name="check.db") -> list[str]:
    assert reconcile("db", "pull", "-o", name, "--force").code == 0
    return titles_in(tmp_path / name)


def test_bad_input_exits_1_with_a_message_and_changes_nothing(canvas_file, reconcile, bucket, serve, tmp_path):
    runtime = serve()
    add(runtime, "old")
    add(runtime, "kept")
    before = version_ids(bucket)
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello, not a database\n" * 100)
    corrupt = tmp_path / "corrupt.db"
    connection = sqlite3.connect(corrupt)
    connection.execute("CREATE TABLE t (x)")
    connection.executemany("INSERT INTO t VALUES (?)", [(os.urandom(200).hex(),) for _ in range(200)])
    connection.commit()
    connection.close()
    data = bytearray(corrupt.read_bytes())
    data[4096: 4096 + 8] = b"\xff" * 8  # page 2's b-tree header: the file opens, its tree is broken
    corrupt.write_bytes(bytes(data))
    cases = [
        (("db", "restore", "--at", "2001-01-01T00:00:00Z", "--auto-approve"), "before the database's first version"),
        (("db", "restore", "--at", "2999-01-01", "--auto-approve"), "is in the future"),
        (("db", "restore", "--version", "no-such-version", "--auto-approve"), "there is no version 'no-such-version'"),
        (("db", "restore", "--auto-approve"), "--at TIME"),
        (("db", "restore", "--at", "2h", "--version", before[0]), "not both"),
        (("db", "restore", "--at", "soonish"), "is not a time"),
        (("db", "push", str(not_sqlite), "--auto-approve"), "is not a SQLite database"),
        (("db", "push", str(corrupt), "--auto-approve"),
         "corrupt.db is not a usable SQLite database: database disk image is malformed; nothing was changed"),
        (("db", "push", str(tmp_path / "missing.db"), "--auto-approve"), "No such file or directory"),
        (("db", "pull", "--at", "2001-01-01", "-o", "x.db"), "before the database's first version"),
    ]
    for args, message in cases:
        result = reconcile(*args)
        assert result.code == 1 and message in result.err, (args, result.err)
        assert "Traceback" not in result.err
        assert version_ids(bucket) == before, args
    assert not (tmp_path / "x.db").exists()
    assert state(reconcile, tmp_path) == ["old", "kept"]
    # The restore asks first; with no terminal to ask on, it does not guess.
    result = reconcile("db", "restore", "--version", before[1])
    assert result.code == 1 and "--auto-approve" in result.err
    assert version_ids(bucket) == before


class Terminal:
    """`reconcile ARGS` with a pseudo-terminal for stdin (so it may ask) and stdout read as it comes."""

    def __init__(self, args: list[str], cwd) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(reconcile_command() + args, cwd=cwd, stdin=slave, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        os.close(slave)
        self.out = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(4096):
            self.out += chunk

    def answer(self, text: str) -> None:
        os.write(self.master, text.encode() + b"\n")

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        assert self.process.stderr is not None
        err = self.process.stderr.read().decode()
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        os.close(self.master)
        return code, self.out.decode(), err


def test_a_write_that_lands_while_the_restore_asks_is_kept(canvas_file, reconcile, bucket, serve, tmp_path):
    runtime = serve()
    add(runtime, "A")
    target = version_ids(bucket)[0]
    add(runtime, "B")
    terminal = Terminal(["db", "restore", "--version", target], cwd=tmp_path)
    wait_for(lambda: b"Only 'code-canvas-astro-db' is accepted" in terminal.out, timeout=60,
             what="the restore's question")
    assert b"undoes:  1 write," in terminal.out
    add(runtime, "C")  # lands while the person reads what will be undone
    terminal.answer(BUCKET)
    code, out, err = terminal.finish()
    assert code == 1, out + err
    assert "the database changed while this ran" in err and "that write is kept" in err
    assert titles_served(runtime) == ["A", "B", "C"]
    assert state(reconcile, tmp_path) == ["A", "B", "C"]
    # Run again, it shows C among what it undoes, and goes through.
    again = reconcile("db", "restore", "--version", target, "--auto-approve")
    assert again.code == 0 and "undoes:  2 writes," in again.out
    assert titles_served(runtime) == ["A"]


def test_a_wrong_answer_cancels_the_restore(canvas_file, reconcile, bucket, serve, tmp_path):
    runtime = serve()
    add(runtime, "A")
    target = version_ids(bucket)[0]
    add(runtime, "B")
    before = version_ids(bucket)
    terminal = Terminal(["db", "restore", "--version", target], cwd=tmp_path)
    wait_for(lambda: b"is accepted" in terminal.out, timeout=60, what="the restore's question")
    terminal.answer("yes")
    code, out, err = terminal.finish()
    assert code == 1 and "db restore cancelled; nothing was changed" in err
    assert version_ids(bucket) == before and titles_served(runtime) == ["A", "B"]


def a_version_missing_a_blob(bucket, serve, *, blob) -> str:
    """Write A (that version's id is returned), then B, then delete one blob of A's version, as
    retention's garbage collection does once the version has left the window: ``blob(manifest)``
    names which."""
    runtime = serve()
    add(runtime, "A")
    old = version_ids(bucket)[0]
    add(runtime, "B")
    manifest = json.loads(bucket.get_object(Bucket=BUCKET, Key=DB_KEY, VersionId=old)["Body"].read())
    bucket.delete_object(Bucket=BUCKET, Key=blob(manifest))
    return old


def test_a_version_whose_blobs_left_the_history_window_says_so(canvas_file, reconcile, bucket, serve, tmp_path):
    old = a_version_missing_a_blob(bucket, serve, blob=lambda manifest: manifest["base"]["key"])
    result = reconcile("db", "pull", "--version", old, "-o", "old.db")
    assert result.code == 1 and "can no longer be rebuilt" in result.err and "DB_HISTORY_SECONDS" in result.err
    assert not (tmp_path / "old.db").exists() and not (tmp_path / "old.db.part").exists()


def test_restore_reaches_back_past_adoption_to_the_single_object_the_seed_guide_left(canvas_file, reconcile,
                                                                                      bucket, serve, tmp_path):
    seed = tmp_path / "seed.db"
    connection = sqlite3.connect(seed)
    connection.execute(TASKS_SCHEMA)
    connection.execute("INSERT INTO tasks (title) VALUES ('seeded by hand')")
    connection.commit()
    connection.close()
    legacy = bucket.put_object(Bucket=BUCKET, Key=DB_KEY, Body=seed.read_bytes())["VersionId"]
    runtime = serve()  # adopts the single object on its cold start
    add(runtime, "after adoption")
    listed = json.loads(reconcile("db", "versions", "--json").out)["versions"]
    assert listed[-1]["version_id"] == legacy and listed[-1]["layout"] == "single-object"
    restored = reconcile("db", "restore", "--version", legacy, "--auto-approve")
    assert restored.code == 0, restored.err
    assert "undoes:  2 later versions," in restored.out  # the adoption and the write
    assert titles_served(runtime) == ["seeded by hand"]


def test_every_db_command_without_a_bucket_is_one_message(canvas_file, reconcile, aws, tmp_path):
    (tmp_path / "mine.db").write_bytes(b"")
    for args in (("db", "info"), ("db", "versions"), ("db", "pull"), ("db", "pull", "--at", "1h"),
                 ("db", "restore", "--at", "1h", "--auto-approve")):
        result = reconcile(*args)
        assert result.code == 1, (args, result.out)
        assert "NoSuchBucket" in result.err or "does not exist" in result.err, (args, result.err)
        assert "Traceback" not in result.err
    assert not (tmp_path / "taskManagement.db").exists()


def test_push_into_an_empty_bucket_creates_the_database_a_cold_start_serves(canvas_file, reconcile, bucket, serve,
                                                                             tmp_path):
    local = tmp_path / "first.db"
    connection = sqlite3.connect(local)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(TASKS_SCHEMA)
    connection.execute("INSERT INTO tasks (title) VALUES ('only in the -wal')")
    connection.commit()  # left open: the row is in first.db-wal, not yet in first.db
    try:
        pushed = reconcile("db", "push", str(local), "--auto-approve")
        assert pushed.code == 0, pushed.err
        assert "size:    — now →" in pushed.out and "tasks (1 row)" in pushed.out
    finally:
        connection.close()
    assert titles_served(serve()) == ["only in the -wal"]


def test_a_restore_after_the_key_was_deleted_keeps_the_history_before_it(canvas_file, reconcile, bucket, replica,
                                                                          tmp_path):
    """`aws s3 rm` of the key, then `db restore --at` before it: the restore continues the deleted
    manifest's lineage, so the compactions after it delete none of the blobs the versions before
    the deletion name."""
    first = replica("first", compact_entries=2, gc_grace=0, history=3600)
    first.restore()
    commit_rows(first, [f"w{n}" for n in range(5)])  # two compactions
    before = version_ids(bucket)
    bucket.delete_object(Bucket=BUCKET, Key=DB_KEY)
    told = reconcile("db", "info")
    assert told.code == 0 and "DELETED at " in told.out
    assert f"`reconcile db restore --version {before[0]}` brings back the state before it" in told.out
    assert json.loads(reconcile("db", "info", "--json").out)["version_before_deletion"] == before[0]
    restored = reconcile("db", "restore", "--version", before[0], "--auto-approve")
    assert restored.code == 0, restored.err
    deleted = json.loads(bucket.get_object(Bucket=BUCKET, Key=DB_KEY, VersionId=before[0])["Body"].read())
    now = json.loads(bucket.get_object(Bucket=BUCKET, Key=DB_KEY)["Body"].read())
    assert now["txid"] == deleted["txid"] + 1  # the lineage goes on: its retired bases stay listed
    carried = {old["key"] for old in deleted["retired"]} | {deleted["base"]["key"]}
    assert carried <= {old["key"] for old in now["retired"]}
    second = replica("second", compact_entries=2, gc_grace=0, history=3600)
    second.restore()
    commit_rows(second, ["after1", "after2", "after3"])  # more compactions, garbage collection with no grace
    assert len(before) == 7  # five writes and two compactions (the same state, a new base)
    for n, version in enumerate(before):
        txid = json.loads(bucket.get_object(Bucket=BUCKET, Key=DB_KEY, VersionId=version)["Body"].read())["txid"]
        pulled = reconcile("db", "pull", "--version", version, "-o", f"v{n}.db")
        assert pulled.code == 0, (n, pulled.err)
        assert titles_in(tmp_path / f"v{n}.db") == [f"w{i}" for i in range(txid)]
    assert state(reconcile, tmp_path) == [f"w{n}" for n in range(5)] + ["after1", "after2", "after3"]


def test_push_reads_the_file_it_names_even_with_a_hash_or_question_mark(canvas_file, reconcile, bucket, tmp_path):
    odd = tmp_path / "db#2?.sqlite"
    connection = sqlite3.connect(odd)
    connection.execute(TASKS_SCHEMA)
    connection.execute("INSERT INTO tasks (title) VALUES ('from the odd name')")
    connection.commit()
    connection.close()
    pushed = reconcile("db", "push", str(odd), "--auto-approve")
    assert pushed.code == 0, pushed.err
    assert "tasks (1 row)" in pushed.out
    assert state(reconcile, tmp_path) == ["from the odd name"]
    assert sorted(path.name for path in tmp_path.glob("db*")) == ["db#2?.sqlite"]  # no stray file opened


def test_restoring_a_version_whose_blobs_are_gone_changes_nothing(canvas_file, reconcile, bucket, serve, tmp_path):
    old = a_version_missing_a_blob(
        bucket, serve, blob=lambda manifest: (manifest["log"][-1] if manifest["log"] else manifest["base"])["key"])
    before = version_ids(bucket)
    result = reconcile("db", "restore", "--version", old, "--auto-approve")
    assert result.code == 1 and "can no longer be rebuilt" in result.err and "Traceback" not in result.err
    assert version_ids(bucket) == before
