"""`reconcile logs`: the function's CloudWatch log events, read and shown as `aws logs tail` does.

Owns the log group's name, reading a window of events (FilterLogEvents, every page), telling the
runtime's own lines from the rest, the one-line rendering, and --follow's poll loop. The clock
and the sleep are passed in, so the loop is tested without waiting.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from reconciler.aws import error_code
from reconciler.errors import ReconcileError

POLL_SECONDS = 2.0

# The runtime's lines come in two shapes. Serve mode and the shutdown extension use
# runtime/logs.py's FORMAT ("<asctime> <LEVEL> runtime.<module>: …"); runtime.app is the app's own
# output relayed by the runtime, so it is not the runtime's line. Inside Lambda the handler process
# keeps the Lambda runtime client's handler ("[LEVEL]\t<time>\t<request id>\t…"), which drops the
# logger's name: there every Python log record is the runtime's (the app's relayed output too, which
# that shape cannot tell apart).
_RUNTIME_FORMAT = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) runtime\.(?!app:)[\w.]+: ")
_LAMBDA_PYTHON_FORMAT = re.compile(r"\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]\t\S+\t\S*\t")
# Lambda names a stream "2024/05/01/[$LATEST]<32 hex digits>": the date is in each line's time.
_LAMBDA_STREAM = re.compile(r"\d{4}/\d\d/\d\d/(\[[^\]]*\])([0-9a-f]{8})[0-9a-f]*")


@dataclass(frozen=True)
class Event:
    timestamp: int  # milliseconds since the epoch, as CloudWatch keeps them
    stream: str
    message: str
    event_id: str


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_events(client, *, function: str, start: int, pattern: str | None = None,
                page_size: int | None = None, end: int | None = None) -> list[Event]:
    """Every event in [start, end] (ms) matching the filter pattern, oldest first: all pages."""
    request: dict = {"logGroupName": log_group(function), "startTime": start}
    if end is not None:
        request["endTime"] = end
    if pattern:
        request["filterPattern"] = pattern
    if page_size:
        request["limit"] = page_size
    events: list[Event] = []
    while True:
        answer = _filter(client, function=function, request=request)
        events += [Event(e["timestamp"], e.get("logStreamName", ""), e.get("message", ""), e["eventId"])
                   for e in answer.get("events", [])]
        if not answer.get("nextToken") or answer["nextToken"] == request.get("nextToken"):
            break  # CloudWatch may hand back the token it was given at the end of the data
        request["nextToken"] = answer["nextToken"]
    # Pages come stream by stream unless interleaved (and moto never interleaves): one order for all.
    return sorted(events, key=lambda event: (event.timestamp, event.event_id))


def _filter(client, *, function: str, request: dict) -> dict:
    try:
        return client.filter_log_events(**request)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise ReconcileError(
                f"no logs yet for {function}: the log group {log_group(function)} does not exist "
                "(the function writes it on its first invocation)") from None
        raise


def is_runtime_line(message: str) -> bool:
    return bool(_RUNTIME_FORMAT.match(message) or _LAMBDA_PYTHON_FORMAT.match(message))


def keep(events: Iterable[Event], *, runtime_only: bool) -> list[Event]:
    return [event for event in events if not runtime_only or is_runtime_line(event.message)]


def short_stream(name: str) -> str:
    """`2024/05/01/[$LATEST]0123abcd…` → `[$LATEST]0123abcd`; any other name as it is."""
    lambda_name = _LAMBDA_STREAM.fullmatch(name)
    return "".join(lambda_name.groups()) if lambda_name else name


def render(event: Event) -> str:
    moment = datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z {short_stream(event.stream)} {event.message.rstrip()}"


# CloudWatch can ingest an event after a newer one from another stream (two environments, each
# writing its own): every poll looks back this far from the newest event seen.
LATE_MS = 30_000


class Follower:
    """--follow: poll from a little before the newest event seen and show each event once.

    CloudWatch's startTime is inclusive, events share milliseconds, and one stream's event can
    arrive after a newer one from another, so each poll reads from LATE_MS before the newest
    timestamp seen and drops the ids already shown (only ids that window can return are kept).
    """

    def __init__(self, read: Callable[[int], list[Event]], *, start: int, late_ms: int = LATE_MS):
        self.read, self.start, self.since, self.late_ms = read, start, start, late_ms
        self.newest = start
        self.seen: dict[str, int] = {}

    def poll(self) -> list[Event]:
        fresh = [event for event in self.read(self.since) if event.event_id not in self.seen]
        for event in fresh:
            self.seen[event.event_id] = event.timestamp
            self.newest = max(self.newest, event.timestamp)
        self.since = max(self.start, self.newest - self.late_ms)
        self.seen = {event_id: moment for event_id, moment in self.seen.items() if moment >= self.since}
        return fresh


def follow(follower: Follower, *, show: Callable[[list[Event]], None], sleep: Callable[[float], None],
           interval: float = POLL_SECONDS) -> None:
    """Show new events until interrupted (Ctrl-C ends it; the caller turns that into exit 0)."""
    while True:
        show(follower.poll())
        sleep(interval)
