"""Secrets never reach the log: not credentials, not request headers, cookies, query strings or bodies."""
import signal

from runtime_testkit import wait_for

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-Zq81xk",
    "AWS_SESSION_TOKEN": "aws-session-Pp02mv",
}


def test_log_holds_no_credentials_headers_cookies_queries_or_bodies(s3, start_runtime, probe_env):
    runtime = start_runtime(env=probe_env(SYNC_INTERVAL="0", **SECRETS))
    leaks = ["bearer-token-Hh55", "cookie-value-Kk77", "query-value-Jj66", "body-value-Ll88"]
    headers = [("Authorization", f"Bearer {leaks[0]}"), ("Cookie", f"session={leaks[1]}")]
    assert runtime.request("POST", f"/notes?token={leaks[2]}", leaks[3], headers).status == 201
    assert runtime.request("GET", f"/echo?token={leaks[2]}", None, headers).status == 200
    assert runtime.request("GET", f"/status/500?token={leaks[2]}", None, headers).status == 500
    assert runtime.request("POST", "/crash", leaks[3], headers).status == 502
    assert runtime.stop(signal.SIGTERM) == 0
    log = runtime.log()
    assert "POST /notes -> 201" in log and "synced" in log  # the log does describe what happened
    for secret in leaks + list(SECRETS.values()):
        assert secret not in log


def test_the_apps_stderr_is_logged_at_warning_and_its_stdout_at_info(start_runtime, probe_env):
    runtime = start_runtime(env=probe_env())
    assert runtime.request("GET", "/stderr?text=marker-Mm31").status == 200

    def levels():  # the app's message -> the level it was logged at ("<date> <time> LEVEL runtime.app: ...")
        found = {}
        for line in runtime.log().splitlines():
            head, _, message = line.partition(" runtime.app: ")
            if message in ("marker-Mm31", "err: marker-Mm31"):
                found[message] = head.split()[-1]
        return found if len(found) == 2 else None

    found = wait_for(levels, timeout=10, what="both of the app's lines in the log")
    assert found == {"marker-Mm31": "INFO", "err: marker-Mm31": "WARNING"}
