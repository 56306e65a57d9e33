"""Secrets never reach the log: not credentials, not request headers, cookies, query strings or bodies."""
import signal

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
