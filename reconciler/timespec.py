"""When a command's --since (or --at) means: one parser for every time a user types, and the
one way the commands write a time back (`iso`).

`parse_since(text, now)` takes a relative duration back from `now` (`30s`, `10m`, `2h`, `1d`,
`1w`) or an ISO 8601 timestamp (a date alone, or with a time; without a zone it is UTC), and
returns an aware UTC datetime. Pure: `now` is passed in, so callers and tests fix the clock.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from reconciler.errors import ReconcileError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
ALLOWED = ("a duration back from now (30s, 10m, 2h, 1d, 1w) or an ISO 8601 time "
           "(2024-05-01, 2024-05-01T12:00:00, 2024-05-01T12:00:00+02:00; UTC when no zone is given)")


def parse_since(text: str, now: datetime) -> datetime:
    """The moment `text` names, as an aware UTC datetime; a ReconcileError naming what is allowed
    for anything else. `now` without a zone is taken as UTC."""
    spoken = text.strip()
    relative = _RELATIVE.fullmatch(spoken.lower())
    if relative:
        amount, unit = relative.groups()
        return _utc(now) - timedelta(**{_UNITS[unit]: int(amount)})
    return _utc(_iso(spoken, text))


def _iso(spoken: str, text: str) -> datetime:
    # fromisoformat reads no trailing Z before Python 3.11; it means UTC, as +00:00 does.
    candidate = spoken[:-1] + "+00:00" if spoken[-1:] in ("z", "Z") else spoken
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        raise ReconcileError(f"{text!r} is not a time: give {ALLOWED}") from None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso(moment: datetime, *, precise: bool = False) -> str:
    """UTC, to the second; ``precise`` adds milliseconds (two writes can share a second)."""
    moment = _utc(moment)
    if precise:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
