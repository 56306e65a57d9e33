"""The app misbehaving: crashing mid-request (502 and a restart), dying between requests, never
getting ready, exiting at start, answering too slowly."""
import os
import signal
import sys

from runtime_testkit import held_past_app_timeout, wait_for


def test_app_crash_gives_502_and_a_restart(s3, start_runtime, probe_env):
    runtime = start_runtime(env=probe_env())
    assert runtime.request("POST", "/notes", "before the crash").status == 201
    crashed_pid = runtime.app_pid()

    response = runtime.request("POST", "/crash", "")
    assert response.status == 502
    request_id = response.json()["requestId"]
    assert runtime.app_pid() != crashed_pid
    assert runtime.request("GET", "/notes").json() == ["before the crash"]  # the restarted app, same data
    log = runtime.log()
    assert (f"canvas-runtime 502 request={request_id} cause=app-crashed: the app crashed (exit code 3) while "
            f"handling POST /crash; it was restarted") in log
    assert "exited with code 3; restarting it" in log and "crashing on purpose" in log
    assert s3.writes() == 1  # the crash itself changed nothing


def test_app_killed_between_requests_is_restarted_before_the_next(start_runtime, probe_env):
    runtime = start_runtime(env=probe_env())
    assert runtime.request("POST", "/notes", "n").status == 201
    killed = runtime.app_pid()
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: _fully_dead(killed), timeout=5, what="the app and all its threads to be gone")
    assert runtime.request("GET", "/notes").json() == ["n"]
    assert runtime.app_pid() != killed
    assert "exited with code -9; restarting it" in runtime.log()


def _fully_dead(pid):
    """A zombie whose threads have all exited: only then can its parent reap it. (A multi-threaded
    process shows "Z" for its main thread while the other threads are still exiting.)"""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            zombie = handle.read().split(")")[-1].split()[0] == "Z"
        return zombie and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


def test_app_that_never_gets_ready_gives_503_with_its_output_in_the_log(start_runtime, runtime_env):
    command = f"{sys.executable} -c \"print('booting slowly', flush=True); import time; time.sleep(60)\""
    runtime = start_runtime(env=runtime_env(APP_COMMAND=command, READY_TIMEOUT="0.5"))
    response = runtime.request("GET", "/api/tasks")
    assert response.status == 503
    assert "did not answer GET /healthz" in runtime.log()
    assert "within 0.5s (READY_TIMEOUT)" in runtime.log() and "booting slowly" in runtime.log()
    assert "booting slowly" not in response.body.decode()  # the app's output is for the log, not the public


def test_app_that_exits_at_start_gives_503_with_its_output_in_the_log(start_runtime, runtime_env):
    command = f"{sys.executable} -c \"import sys; print('DATABASE_URL missing', flush=True); sys.exit(4)\""
    runtime = start_runtime(env=runtime_env(APP_COMMAND=command))
    response = runtime.request("GET", "/")
    assert response.status == 503
    assert "exited with code 4 before it was ready" in runtime.log()
    assert "DATABASE_URL missing" in runtime.log() and "DATABASE_URL" not in response.body.decode()


def test_app_command_that_does_not_exist_gives_503(start_runtime, runtime_env):
    runtime = start_runtime(env=runtime_env(APP_COMMAND="/nonexistent/app-server --port 1"))
    response = runtime.request("GET", "/")
    assert response.status == 503
    assert "could not start APP_COMMAND '/nonexistent/app-server'" in runtime.log()
    assert "nonexistent" not in response.body.decode()


def test_app_too_slow_gives_504_and_the_write_it_made_is_still_synced(s3, start_runtime, probe_env):
    env = probe_env(APP_TIMEOUT="1")
    runtime = start_runtime(env=env)
    response = held_past_app_timeout(runtime, env["GATE_DIR"], "POST", "/gate", "slow")
    assert response.status == 504
    request_id = response.json()["requestId"]
    assert (f"canvas-runtime 504 request={request_id} cause=app-timeout: POST /gate: the app did not answer "
            f"within 1s (APP_TIMEOUT)") in runtime.log()
    assert s3.query("SELECT text FROM notes") == [("slow",)]  # committed by the app, so synced, not lost
    assert runtime.request("GET", "/notes").json() == ["slow"]
