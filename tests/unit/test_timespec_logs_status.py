"""The pure parts of `logs` and `status`: the DURATION parser, the runtime-line test, --follow's
de-duplication, the metric period and what makes status exit 1."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler.errors import ReconcileError
from reconciler.logs import Event, Follower, is_runtime_line, render, short_stream
from reconciler.status import metric_period, problems
from reconciler.timespec import parse_since

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, back", [
    ("30s", timedelta(seconds=30)), ("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2)),
    ("1d", timedelta(days=1)), ("1w", timedelta(weeks=1)), (" 2H ", timedelta(hours=2)), ("0s", timedelta()),
])
def test_relative_durations_count_back_from_now(text, back):
    assert parse_since(text, NOW) == NOW - back


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01", datetime(2026, 12, 1, tzinfo=timezone.utc)),
    ("2026-12-01T08:30:00", datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc)),
    ("2026-12-01 08:30", datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc)),
    ("2026-12-01T08:30:00Z", datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc)),
    ("2026-12-01T10:30:00+02:00", datetime(2026, 12, 1, 8, 30, tzinfo=timezone.utc)),
    ("2026-12-01T08:30:00.250", datetime(2026, 12, 1, 8, 30, 0, 250000, tzinfo=timezone.utc)),
])
def test_iso_times_are_utc_unless_they_say_otherwise(text, expected):
    parsed = parse_since(text, NOW)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


def test_a_naive_now_is_taken_as_utc():
    assert parse_since("1h", NOW.replace(tzinfo=None)) == NOW - timedelta(hours=1)


@pytest.mark.parametrize("text", ["", "yesterday", "10", "5 minutes", "1y", "-1h", "2026-13-01", "1h30m"])
def test_anything_else_names_what_is_allowed(text):
    with pytest.raises(ReconcileError) as raised:
        parse_since(text, NOW)
    assert f"{text!r} is not a time" in str(raised.value)
    assert "30s, 10m, 2h, 1d, 1w" in str(raised.value) and "ISO 8601" in str(raised.value)


@pytest.mark.parametrize("message, runtime", [
    ("2026-12-04 02:30:00,123 INFO runtime.replica: restored s3://b/k", True),
    ("2026-12-04 02:30:00,123 ERROR runtime.extension: final sync skipped: x", True),
    ("2026-12-04 02:30:00,123 INFO runtime.app: GET / 200", False),  # the app's output, relayed
    ("[WARNING]\t2026-12-04T02:30:00.123Z\t1f2e-4a\tanswering 409 to request r (conflict): x", True),
    ("START RequestId: 1f2e Version: $LATEST", False),
    ("REPORT RequestId: 1f2e\tDuration: 3.1 ms", False),
    ("INFO runtime.replica: no time in front", False),
])
def test_runtime_lines_in_both_of_their_shapes(message, runtime):
    assert is_runtime_line(message) is runtime


def test_lambda_stream_names_are_shortened_and_others_kept():
    assert short_stream("2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef") == "[$LATEST]01234567"
    assert short_stream("my-stream") == "my-stream"


def test_an_event_renders_as_time_stream_message():
    event = Event(timestamp=1_796_385_600_250, stream="s", message="hello\n", event_id="1")
    assert render(event) == "2026-12-04T12:00:00.250Z s hello"


def test_follow_shows_each_event_once_even_when_it_shares_a_millisecond():
    store: list[Event] = [Event(100, "s", "a", "1"), Event(200, "s", "b", "2")]
    asked: list[int] = []

    def read(since: int) -> list[Event]:
        asked.append(since)
        return [event for event in store if event.timestamp >= since]

    follower = Follower(read, start=50)
    assert [e.message for e in follower.poll()] == ["a", "b"]
    assert follower.poll() == []
    store.append(Event(200, "s", "c", "3"))  # same millisecond as b, arrived later
    store.append(Event(300, "s", "d", "4"))
    assert [e.message for e in follower.poll()] == ["c", "d"]
    assert follower.poll() == []
    assert asked == [50, 50, 50, 50]  # all within LATE_MS of the newest: the window starts at --since


def test_follow_shows_an_event_ingested_late_with_an_older_timestamp_once():
    store: list[Event] = [Event(100_000, "a", "first", "1"), Event(160_000, "a", "newest", "2")]
    asked: list[int] = []

    def read(since: int) -> list[Event]:
        asked.append(since)
        return [event for event in store if event.timestamp >= since]

    follower = Follower(read, start=0, late_ms=30_000)
    assert [e.message for e in follower.poll()] == ["first", "newest"]
    store.append(Event(150_000, "b", "late from another stream", "3"))  # older than "newest"
    assert [e.message for e in follower.poll()] == ["late from another stream"]
    assert follower.poll() == []
    store.append(Event(100_500, "b", "later than the window", "4"))  # beyond LATE_MS: as aws logs tail
    assert follower.poll() == []
    assert asked == [0, 130_000, 130_000, 130_000]
    assert set(follower.seen) == {"2", "3"}  # only ids the window can still return


@pytest.mark.parametrize("window, period", [
    (timedelta(seconds=30), 60), (timedelta(minutes=10), 600), (timedelta(hours=1), 3600),
    (timedelta(hours=1, seconds=1), 7200), (timedelta(days=1), 86400),
])
def test_one_metric_period_covers_the_window(window, period):
    assert metric_period(NOW - window, NOW) == period


def _report(*, state="Active", update="Successful", errors=0.0, invocations=10.0, answering=True,
            url: str | None = "https://x.lambda-url.us-west-2.on.aws/") -> dict:
    return {"function": {"state": state, "state_reason": "image gone", "last_update_status": update,
                         "last_update_reason": "bad image"},
            "metrics": {"error_rate": errors / invocations if invocations else None},
            "url": {"url": url, "expected": True, "answering": answering, "status": 200 if answering else None,
                    "latency_ms": 3.0, "error": None if answering else "refused"}}


def test_a_healthy_report_has_no_problem():
    assert problems(_report(), max_error_rate=0.05) == []
    assert problems(_report(errors=0, invocations=0), max_error_rate=0.0) == []  # no traffic: no rate


@pytest.mark.parametrize("change, expected", [
    ({"state": "Failed"}, "the function's State is Failed: image gone"),
    ({"update": "Failed"}, "its last update failed: bad image"),
    ({"errors": 1.0}, "error rate 10.0% (Lambda errors and the runtime's 5xx answers) is over --max-error-rate 5.0%"),
    ({"answering": False}, "the Function URL does not answer: no answer (refused) after 3 ms"),
    ({"url": None, "answering": False}, "the Function URL does not answer: the function has no Function URL"),
])
def test_each_problem_is_named(change, expected):
    found = problems(_report(**change), max_error_rate=0.05)
    assert len(found) == 1 and found[0].startswith(expected), found
