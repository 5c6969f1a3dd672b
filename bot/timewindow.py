"""When a meeting's links start and stop working, as people type it and as people read it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(\d{1,4})\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?)\s*$", re.I)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | None:
    """``15m``, ``2h``, ``7d`` (and spelled-out units) as a timedelta; None if not a duration."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    amount = int(match.group(1))
    seconds = amount * _UNIT_SECONDS[match.group(2)[0].lower()]
    return timedelta(seconds=seconds) if seconds > 0 else None


def zone(name: str | None, fallback: str) -> tzinfo:
    """The person's zone when Webex knows it and it is real, else the configured default."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def parse_start(day: str, clock: str, tz: tzinfo) -> datetime | None:
    """A start typed as ``YYYY-MM-DD`` and ``HH:MM`` in ``tz``; None when it is not a date."""
    try:
        parsed_day = date.fromisoformat(day.strip())
        parsed_time = time.fromisoformat(clock.strip()) if clock.strip() else time(0, 0)
    except ValueError:
        return None
    return datetime.combine(parsed_day, parsed_time.replace(tzinfo=None), tzinfo=tz)


def describe_window(nbf: int, exp: int, tz: tzinfo) -> str:
    """A validity window as a person reads it: ``Tue 1 Dec 2026 09:00 to 11:00 (Europe/Paris)``."""
    start = datetime.fromtimestamp(nbf, tz)
    end = datetime.fromtimestamp(exp, tz)
    end_format = "%H:%M" if start.date() == end.date() else "%a %-d %b %H:%M"
    return f"{start:%a %-d %b %Y %H:%M} to {end.strftime(end_format)} ({tz})"
