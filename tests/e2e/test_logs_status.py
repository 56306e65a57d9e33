"""`reconcile logs` and `reconcile status` as a user runs them, against moto on loopback (issue 11).

The log events and metrics are put by the test (put_log_events, put_metric_data): moto runs no
function, so nothing writes them otherwise. moto's Function URL host does not exist, so the URL
probe is pointed at a local server through the hidden --probe-url.
"""
from __future__ import annotations

import http.server
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from reconciler.logs import read_events
from tests.e2e.conftest import FUNCTION, REPO, TAG, reconcile_command
from tests.ecr_images import register_image

GROUP = f"/aws/lambda/{FUNCTION}"
STREAM_A = "2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef"
STREAM_B = "2026/12/04/[$LATEST]fedcba9876543210fedcba9876543210"

# (minutes ago, stream, message): Lambda's lines, the runtime's in both of its shapes, the app's output.
EVENTS = [
    (30, STREAM_A, "an old line, before any window the tests ask for"),
    (5, STREAM_A, "START RequestId: 1f2e Version: $LATEST"),
    (4, STREAM_A, "2026-12-04 02:30:00,123 INFO runtime.replica: restored s3://b/db (ETag e1, txid 3, 4096 bytes)"),
    (3.5, STREAM_B, "2026-12-04 02:30:30,000 WARNING runtime.core: changes made by earlier reads were dropped"),
    (3, STREAM_A, "2026-12-04 02:31:00,000 INFO runtime.app: GET /api/tasks 200"),
    (2, STREAM_B, "[ERROR]\t2026-12-04T02:32:00.000Z\t1f2e\tcanvas-runtime 503 request=r1 cause=cold-start: no bucket"),
    (1, STREAM_A, "END RequestId: 1f2e"),
]
RUNTIME_LINES = ["runtime.replica: restored", "runtime.core: changes made", "canvas-runtime 503"]


class Clock:
    """The moment the events are put relative to: taken when a test starts, not at import (under
    xdist a module is imported minutes before its last test runs)."""
    now = datetime.now(timezone.utc)


def millis(minutes_ago: float) -> int:
    return int((Clock.now - timedelta(minutes=minutes_ago)).timestamp() * 1000)


def logs_client():
    return boto3.client("logs", region_name="us-west-2")


def put_events(client, events) -> None:
    for stream in sorted({stream for _, stream, _ in events}):
        try:
            client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        except client.exceptions.ResourceAlreadyExistsException:
            pass
        batch = sorted((millis(ago), message) for ago, name, message in events if name == stream)
        client.put_log_events(logGroupName=GROUP, logStreamName=stream,
                              logEvents=[{"timestamp": ts, "message": message} for ts, message in batch])


@pytest.fixture
def log_group(moto_endpoint, canvas_file):
    Clock.now = datetime.now(timezone.utc)
    client = logs_client()
    client.create_log_group(logGroupName=GROUP)
    put_events(client, EVENTS)
    return client


def messages(output: str) -> list[str]:
    """Each line's message, after its time and stream."""
    return [line.split(" ", 2)[2] for line in output.splitlines()]


def test_logs_shows_the_window_oldest_first_across_streams(log_group, reconcile):
    run = reconcile("logs", "--since", "10m")
    assert run.code == 0, run.err
    assert messages(run.out) == [message for ago, _, message in EVENTS if ago <= 10]
    first = run.out.splitlines()[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[\$LATEST\]01234567 START RequestId: 1f2e "
                        r"Version: \$LATEST", first), first
    assert "[$LATEST]fedcba98 " in run.out and "2026/12/04/" not in run.out


def test_logs_since_excludes_older_events_relative_and_iso(log_group, reconcile):
    default = reconcile("logs")  # 10m: the 30-minute-old line is out
    assert default.code == 0 and "an old line" not in default.out and "END RequestId" in default.out
    wide = reconcile("logs", "--since", "1h")
    assert wide.code == 0 and "an old line" in wide.out
    cut = (Clock.now - timedelta(minutes=2.5)).strftime("%Y-%m-%dT%H:%M:%S")  # ISO, no zone: UTC
    run = reconcile("logs", "--since", cut)
    assert run.code == 0, run.err
    assert messages(run.out) == [message for ago, _, message in EVENTS if ago < 2.5]


def test_logs_filter_is_cloudwatchs_filter_pattern(log_group, reconcile):
    run = reconcile("logs", "--filter", "restored")
    assert run.code == 0, run.err
    assert len(run.out.splitlines()) == 1 and "runtime.replica: restored" in run.out
    phrase = reconcile("logs", "--filter", '"RequestId: 1f2e"')
    assert [m.split()[0] for m in messages(phrase.out)] == ["START", "END"]


def test_logs_runtime_keeps_only_the_runtimes_own_lines(log_group, reconcile):
    run = reconcile("logs", "--runtime")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == len(RUNTIME_LINES)
    assert all(wanted in line for wanted, line in zip(RUNTIME_LINES, lines, strict=True))
    assert "runtime.app" not in run.out and "START" not in run.out
    narrowed = reconcile("logs", "--runtime", "--filter", "canvas-runtime")
    assert narrowed.code == 0 and len(narrowed.out.splitlines()) == 1 and "cause=cold-start" in narrowed.out


def test_reading_every_page_of_filter_log_events(log_group):
    events = read_events(log_group, function=FUNCTION, start=millis(60), page_size=2)
    assert [event.message for event in events] == [message for _, _, message in EVENTS]


def test_logs_without_a_log_group_says_so(moto_endpoint, canvas_file, reconcile):
    run = reconcile("logs")
    assert run.code == 1
    assert run.out == ""
    assert (f"no logs yet for {FUNCTION}: the log group {GROUP} does not exist (the function writes it on "
            "its first invocation)") in run.err
    assert "Traceback" not in run.err


def test_logs_rejects_a_since_it_cannot_read(moto_endpoint, canvas_file, reconcile):
    run = reconcile("logs", "--since", "yesterday")
    assert run.code == 1 and "Traceback" not in run.err
    assert "'yesterday' is not a time" in run.err and "30s, 10m, 2h, 1d, 1w" in run.err


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _until(lines: queue.Queue, wanted: str, *, seconds: float) -> list[str]:
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if wanted in line:
            return seen
    raise AssertionError(f"{wanted!r} did not appear within {seconds}s; saw {seen}")


def test_logs_follow_shows_new_events_once_and_ends_cleanly_on_ctrl_c(log_group, canvas_file):
    env = {**os.environ, "RECONCILE_LOGS_POLL_SECONDS": "0.2"}
    proc = subprocess.Popen(reconcile_command() + ["logs", "--follow", "--since", "10m"], cwd=canvas_file.parent,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        _until(lines, "END RequestId", seconds=30)
        log_group.put_log_events(logGroupName=GROUP, logStreamName=STREAM_B, logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "a line put after --follow started"}])
        _until(lines, "a line put after --follow started", seconds=15)
        time.sleep(1.0)  # several more polls: the new event must not be shown again
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = []
    while (line := lines.get(timeout=5)) is not None:
        rest.append(line)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 0, err
    assert "Traceback" not in err
    assert not any("a line put after" in line or "END RequestId" in line for line in rest)


# --- status --------------------------------------------------------------------------------------

class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    """A tiny HTTP server on loopback standing in for the Function URL; its answer's status is settable."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.status = 200  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def probe_url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def put_metrics(*, invocations: float, errors: float, throttles: float, minutes_ago: float = 10) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-west-2")
    at = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    dimensions = [{"Name": "FunctionName", "Value": FUNCTION}]
    counts = [{"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Count", "Timestamp": at}
              for name, value in (("Invocations", invocations), ("Errors", errors), ("Throttles", throttles))]
    duration = {"MetricName": "Duration", "Dimensions": dimensions, "Values": [12.0, 40.0, 900.0],
                "Counts": [10, 9, 1], "Unit": "Milliseconds", "Timestamp": at}
    cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=counts + [duration])


def figure(output: str, name: str) -> str:
    found = re.search(rf"^  {name}:\s+(.*)$", output, flags=re.MULTILINE)
    assert found, output
    return found.group(1)


def test_status_healthy_function_reports_state_image_url_and_metrics(deployed, reconcile, web):
    put_metrics(invocations=20, errors=1, throttles=2)
    put_metrics(invocations=500, errors=400, throttles=0, minutes_ago=180)  # outside the 1h window
    run = reconcile("status", "--probe-url", probe_url(web))
    assert run.code == 0, run.out + run.err
    assert figure(run.out, "state") == "Active (last update: Successful)"
    assert figure(run.out, "image") == f"{deployed} — current"
    assert re.fullmatch(r"https://\S+\.lambda-url\.us-west-2\.on\.aws/?", figure(run.out, "url"))
    assert re.fullmatch(r"yes: HTTP 200 in \d+ ms \(probed http://127\.0\.0\.1:\d+/\)", figure(run.out, "answers"))
    assert figure(run.out, "invocations") == "20"
    assert figure(run.out, "errors") == "1 from Lambda, 0 runtime 5xx (5.0% of invocations)"  # not over 5%
    assert figure(run.out, "throttles") == "2"
    assert figure(run.out, "duration") == "p50 n/a, p99 n/a"  # moto computes no percentiles
    assert run.out.rstrip().endswith("Healthy.")


def test_status_json_holds_the_same_figures(deployed, reconcile, web):
    put_metrics(invocations=40, errors=4, throttles=1)
    run = reconcile("status", "--json", "--since", "2h", "--max-error-rate", "10", "--probe-url", probe_url(web))
    assert run.code == 0, run.out + run.err
    report = json.loads(run.out)
    assert report["name"] == FUNCTION and report["healthy"] is True and report["problems"] == []
    assert report["function"]["state"] == "Active"
    assert report["image"] == {"running": deployed, "tag": f"{REPO}:{TAG}", "tag_digest": deployed,
                               "current": True, "verdict": "current"}
    assert report["url"]["status"] == 200 and report["url"]["answering"] is True
    assert report["url"]["url"].endswith(".on.aws/") or ".lambda-url." in report["url"]["url"]
    metrics = report["metrics"]
    assert (metrics["invocations"], metrics["errors"], metrics["throttles"]) == (40, 4, 1)
    assert metrics["error_rate"] == pytest.approx(0.1)
    assert metrics["duration_p50_ms"] is None and metrics["duration_p99_ms"] is None


def test_status_error_rate_over_the_threshold_exits_1(deployed, reconcile, web):
    put_metrics(invocations=20, errors=1, throttles=0)
    run = reconcile("status", "--max-error-rate", "4", "--probe-url", probe_url(web))
    assert run.code == 1, run.out + run.err
    assert "  - error rate 5.0% (Lambda errors and the runtime's 5xx answers) is over --max-error-rate 4.0%" \
        in run.out
    assert "Traceback" not in run.err


@pytest.mark.parametrize("answer", ["503", "nothing listening"])
def test_status_url_that_does_not_answer_exits_1(deployed, reconcile, web, dead_endpoint, answer):
    web.status = 503
    url = probe_url(web) if answer == "503" else dead_endpoint + "/"
    run = reconcile("status", "--json", "--probe-url", url)
    assert run.code == 1, run.out + run.err
    report = json.loads(run.out)
    assert report["url"]["answering"] is False and report["healthy"] is False
    assert report["url"]["status"] == (503 if answer == "503" else None)
    assert [p for p in report["problems"] if p.startswith("the Function URL does not answer")]


def test_status_without_a_probe_override_tries_the_function_url(deployed, reconcile):
    # What a user gets against moto: its Function URL's host does not resolve, so it does not answer.
    run = reconcile("status")
    assert run.code == 1, run.out + run.err
    assert re.search(r"^  answers:      NO: no answer \(.+\) after \d+ ms$", run.out, flags=re.MULTILINE), run.out


def test_status_shows_behind_when_the_tag_moved(deployed, reconcile, aws, web):
    moved = register_image(aws.ecr, REPO, TAG, b"a newer image under the same tag")
    assert moved != deployed
    run = reconcile("status", "--probe-url", probe_url(web))
    assert run.code == 0, run.out + run.err  # behind is news, not a failure: `reconcile apply` rolls it out
    assert figure(run.out, "image") == f"{deployed} — behind: tag now points at {moved}"


def test_status_of_a_missing_function_says_so(moto_endpoint, canvas_file, reconcile):
    run = reconcile("status")
    assert run.code == 1 and run.out == ""
    assert f"function {FUNCTION} does not exist in us-west-2" in run.err
    assert "Traceback" not in run.err


def test_status_rejects_a_window_in_the_future(moto_endpoint, canvas_file, reconcile):
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = reconcile("status", "--since", future)
    assert run.code == 1 and "the window must start before now" in run.err and "Traceback" not in run.err


def test_status_counts_the_runtimes_own_5xx_which_lambda_counts_as_successes(deployed, reconcile, web):
    Clock.now = datetime.now(timezone.utc)
    put_metrics(invocations=20, errors=0, throttles=0)
    client = logs_client()
    client.create_log_group(logGroupName=GROUP)
    line = "[ERROR]\t2026-12-04T00:00:00.000Z\tr-1\tcanvas-runtime 503 request=r-{} cause={}: detail"
    put_events(client, [(5, STREAM_A, line.format(1, "s3-unreachable")),
                        (4, STREAM_A, line.format(2, "s3-unreachable")),
                        (3, STREAM_B, line.format(3, "db-corrupt")),
                        (2, STREAM_B, "an app line about canvas-runtime"),
                        (90, STREAM_A, line.format(4, "db-corrupt"))])  # the last is outside the 1h window
    run = reconcile("status", "--json", "--probe-url", probe_url(web))
    assert run.code == 1, run.out + run.err
    metrics = json.loads(run.out)["metrics"]
    assert metrics["errors"] == 0 and metrics["runtime_5xx"] == 3
    assert metrics["runtime_5xx_causes"] == {"db-corrupt": 1, "s3-unreachable": 2}
    assert metrics["error_rate"] == pytest.approx(0.15)
    text = reconcile("status", "--probe-url", probe_url(web))
    assert figure(text.out, "errors") == ("0 from Lambda, 3 runtime 5xx (db-corrupt: 1, s3-unreachable: 2) "
                                          "(15.0% of invocations)")
