"""Shutdown: serve mode's SIGTERM/SIGINT final sync, and the Lambda extension's final sync from /tmp
state, driven by a fake Extensions API on 127.0.0.1."""
import signal

import pytest
from runtime_testkit import start_extension, wait_for


def visits_in_s3(s3):
    return s3.query("SELECT count(*) FROM visits")[0][0]


def leave_an_unsynced_read(runtime, s3):
    """A synced write, then a read that changed the database (deferred by SYNC_INTERVAL)."""
    assert runtime.request("POST", "/notes", "kept").status == 201
    assert runtime.request("GET", "/touch").status == 200
    assert s3.writes() == 1 and visits_in_s3(s3) == 0


@pytest.mark.parametrize("signum,group", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["sigterm-to-runtime", "ctrl-c-to-process-group"])
def test_signal_does_the_final_sync(s3, start_runtime, probe_env, signum, group):
    runtime = start_runtime(env=probe_env(SYNC_INTERVAL="3600"))
    leave_an_unsynced_read(runtime, s3)
    assert runtime.stop(signum, group=group) == 0
    assert s3.writes() == 2 and visits_in_s3(s3) == 1
    assert s3.integrity() == "ok"
    assert "final sync at shutdown: synced" in runtime.log()


def test_sigterm_with_nothing_unsynced_writes_nothing(s3, start_runtime):
    runtime = start_runtime()
    assert runtime.post_json("/api/tasks", {"title": "t"}).status == 201
    etag = s3.etag()
    assert runtime.stop(signal.SIGTERM) == 0
    assert s3.etag() == etag and s3.writes() == 1
    assert "final sync at shutdown: nothing unsynced" in runtime.log()


def run_extension_until_shutdown(env, api, tmp_path, reason="spindown"):
    process = start_extension(env, api, tmp_path / "extension.log")
    try:
        wait_for(lambda: api.next_calls, timeout=20, what="the extension to register and wait for events")
        api.shutdown(reason)
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    return code, (tmp_path / "extension.log").read_text()


def test_extension_registers_for_shutdown_and_does_the_final_sync_from_tmp_state(
        s3, start_runtime, probe_env, extensions_api, tmp_path):
    env = probe_env(SYNC_INTERVAL="3600")
    runtime = start_runtime(env=env)
    leave_an_unsynced_read(runtime, s3)
    runtime.kill9()  # the runtime gets no signal under Lambda; only its state in /tmp remains

    code, log = run_extension_until_shutdown(env, extensions_api, tmp_path)
    assert code == 0, log
    registration = extensions_api.registrations[0]
    assert registration["headers"]["Lambda-Extension-Name"] == "canvas-db-sync"
    assert registration["body"] == {"events": ["SHUTDOWN"]}
    assert extensions_api.next_calls[0]["headers"]["Lambda-Extension-Identifier"] == "ext-id-1234"
    assert s3.writes() == 2 and visits_in_s3(s3) == 1 and s3.integrity() == "ok"
    assert "final sync: uploaded" in log

    # The state now says synced: a second shutdown (say a retry) uploads nothing.
    extensions_api._release.clear()
    extensions_api.next_calls.clear()
    code, log = run_extension_until_shutdown(env, extensions_api, tmp_path)
    assert code == 0 and "every change was already synced" in log
    assert s3.writes() == 2


def test_extension_uploads_nothing_when_everything_is_synced(s3, start_runtime, probe_env, extensions_api, tmp_path):
    env = probe_env()
    runtime = start_runtime(env=env)
    assert runtime.request("POST", "/notes", "synced").status == 201
    assert runtime.request("GET", "/notes").status == 200
    runtime.kill9()
    code, log = run_extension_until_shutdown(env, extensions_api, tmp_path)
    assert code == 0, log
    assert s3.writes() == 1
    assert "every change was already synced" in log


def test_extension_catches_a_commit_the_runtime_never_saw(s3, start_runtime, probe_env, extensions_api, tmp_path):
    """An app committing after the last request's check: the state's file fingerprint no longer matches."""
    import sqlite3

    env = probe_env()
    runtime = start_runtime(env=env)
    assert runtime.request("POST", "/notes", "seen").status == 201
    runtime.kill9()
    connection = sqlite3.connect(runtime.db_path)
    connection.execute("INSERT INTO notes (text) VALUES ('unseen')")
    connection.commit()
    connection.close()
    code, log = run_extension_until_shutdown(env, extensions_api, tmp_path)
    assert code == 0, log
    assert s3.query("SELECT text FROM notes ORDER BY id") == [("seen",), ("unseen",)]


def test_extension_never_overwrites_another_writer(s3, start_runtime, probe_env, extensions_api, tmp_path):
    env = probe_env(SYNC_INTERVAL="3600")
    runtime = start_runtime(env=env)
    leave_an_unsynced_read(runtime, s3)
    runtime.kill9()
    theirs = s3.edit("INSERT INTO notes (text) VALUES ('theirs')")
    code, log = run_extension_until_shutdown(env, extensions_api, tmp_path, reason="timeout")
    assert code == 0, log
    assert s3.etag() == theirs
    assert s3.query("SELECT text FROM notes ORDER BY id") == [("kept",), ("theirs",)]
    assert "SHUTDOWN (timeout)" in log and "final sync refused, nothing overwritten" in log


def test_extension_outside_lambda_says_so(runtime_env, tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in runtime_env().items() if k != "AWS_LAMBDA_RUNTIME_API"}
    done = subprocess.run([sys.executable, "-m", "runtime.extension"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in done.stderr


def test_extension_registration_failure_exits_non_zero(runtime_env, tmp_path):
    from runtime_testkit import FakeExtensionsApi, free_port

    api = FakeExtensionsApi(address=f"127.0.0.1:{free_port()}")  # nothing listens there
    process = start_extension(runtime_env(), api, tmp_path / "ext.log")
    assert process.wait(30) == 1
    assert "could not register with the Extensions API" in (tmp_path / "ext.log").read_text()

