"""When a meeting is and when its links work, as people type it and as people read it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_interval, format_skeleton

_DURATION = re.compile(r"^\s*(\d{1,4})\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?)\s*$", re.I)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_SHORT_HOUR = re.compile(r"^(\d):(\d\d)$")


def parse_duration(text: str) -> timedelta | None:
    """``15m``, ``2h``, ``7d`` (and spelled-out units) as a timedelta; None if not a duration."""
    match = _DURATION.match(text or "")
    if not match:
        return None
    amount = int(match.group(1))
    seconds = amount * _UNIT_SECONDS[match.group(2)[0].lower()]
    return timedelta(seconds=seconds) if seconds > 0 else None


def spoken_duration(duration: timedelta) -> str:
    """``1 hour 30 minutes``, ``7 days``: a whole number of minutes as a sentence says it."""
    minutes, parts = round(duration.total_seconds() / 60), []
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        amount, minutes = divmod(minutes, size)
        if amount:
            parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
    return " ".join(parts) or "0 minutes"


def known_zone(name: str) -> ZoneInfo | None:
    """The IANA zone of that name, or None: a typo, a path, or a region such as ``Europe``
    (a folder of zones, which the ``tzdata`` package answers with IsADirectoryError)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone(name: str | None, fallback: str) -> tzinfo:
    """The person's zone when Webex knows it and it is real, else the configured default."""
    for candidate in (name, fallback):
        found = known_zone(candidate) if candidate else None
        if found is not None:
            return found
    return UTC


def parse_start(day: str, clock: str, tz: tzinfo) -> datetime | None:
    """A start typed as ``YYYY-MM-DD`` and ``HH:MM`` in ``tz``; None when it is not a date."""
    try:
        parsed_day = date.fromisoformat(day.strip())
        parsed_time = _clock(clock.strip()) if clock.strip() else time(0, 0)
    except ValueError:
        return None
    return datetime.combine(parsed_day, parsed_time.replace(tzinfo=None), tzinfo=tz)


def _clock(text: str) -> time:
    """``09:30``, and ``9:30`` as people type it (ISO 8601 wants two digits); ValueError else."""
    match = _SHORT_HOUR.match(text)
    return time(int(match[1]), int(match[2])) if match else time.fromisoformat(text)


def clock_change_notice(start: datetime) -> str | None:
    """What to tell a person whose typed local start the clocks skip or repeat that day.

    ``start`` is the wall time as typed (fold 0). A time the clocks skip is read with the offset
    before the change, which puts it after the gap (02:30 becomes 03:30); of a time that happens
    twice, the first is used.
    """
    tz = start.tzinfo
    actual = start.astimezone(UTC).astimezone(tz)
    day = f"{start:%a %-d %b}"
    if actual.replace(tzinfo=None) != start.replace(tzinfo=None):
        return (f"{start:%H:%M} does not exist on {day} in {tz}: the clocks go forward "
                f"then. The start is {actual:%H:%M} instead.")
    if _happens_twice(start):
        return (f"{start:%H:%M} happens twice on {day} in {tz}: the clocks go back then. "
                f"The start is the first {start:%H:%M}, {_offset(start)}.")
    return None


def describe_window(nbf: int, exp: int, tz: tzinfo, *, offset: bool = False) -> str:
    """A validity window as a person reads it: ``Tue 1 Dec 2026 09:00 to 11:00 (Europe/Paris)``.

    UTC offsets appear beside the times only where the wall times alone would mislead: when the
    clocks change within the window (``Sun 25 Oct 2026 01:30 UTC+02:00 to 02:30 UTC+01:00``, two
    hours, not one) or when a time shown happens twice that day. Everywhere else they are noise,
    except to a reader who may live in another zone (a guest): ``offset`` then adds the one
    offset of the window beside the zone's name, ``(Europe/Paris, UTC+01:00)``, never twice.
    """
    start = datetime.fromtimestamp(nbf, tz)
    end = datetime.fromtimestamp(exp, tz)
    end_format = "%H:%M" if start.date() == end.date() else "%a %-d %b %H:%M"
    offsets = (
        start.utcoffset() != end.utcoffset() or _happens_twice(start) or _happens_twice(end)
    )
    start_text, end_text = f"{start:%a %-d %b %Y %H:%M}", end.strftime(end_format)
    if offsets:
        start_text, end_text = f"{start_text} {_offset(start)}", f"{end_text} {_offset(end)}"
    where = f"{tz}, {_offset(start)}" if offset and not offsets else f"{tz}"
    return f"{start_text} to {end_text} ({where})"


def describe_appointment(start: int, end: int, tz: tzinfo, language: str) -> str:
    """An appointment as a guest reads it in their language, by CLDR's patterns for it, with
    the zone and its UTC offset as :func:`describe_window` gives them, ``vie, 15 ene 2027,
    9:00-11:00 (Europe/Madrid, UTC+01:00)`` (with CLDR's en dash, and its thin spaces where
    the language has them)."""
    locale = Locale.parse(language)
    begin, finish = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
    clock = "Hm" if "H" in locale.time_formats["short"].pattern else "hm"  # the locale's hours
    offsets = (begin.utcoffset() != finish.utcoffset() or _happens_twice(begin)
               or _happens_twice(finish))

    def day(moment: datetime) -> str:
        return format_skeleton("yMMMEd", moment, tzinfo=tz, locale=locale)

    def time_of(moment: datetime) -> str:
        shown = format_skeleton(clock, moment, tzinfo=tz, locale=locale)
        return f"{shown} {_offset(moment)}" if offsets else shown

    def at(date_text: str, time_text: str) -> str:
        return locale.datetime_formats["medium"].format(time_text, date_text)

    either = str(locale.interval_formats[None])  # "{0} - {1}", as the language writes it
    if begin.date() != finish.date():
        shown = either.format(at(day(begin), time_of(begin)), at(day(finish), time_of(finish)))
    elif offsets:
        shown = at(day(begin), either.format(time_of(begin), time_of(finish)))
    else:
        shown = at(day(begin), format_interval(begin, finish, clock, tzinfo=tz, locale=locale))
    where = f"{tz}" if offsets else f"{tz}, {_offset(begin)}"
    return f"{shown} ({where})"


def _happens_twice(moment: datetime) -> bool:
    """Whether the clocks show this wall time twice that day (the hour repeated in autumn)."""
    return moment.replace(fold=1 - moment.fold).utcoffset() != moment.utcoffset()


def _offset(moment: datetime) -> str:
    """``UTC+02:00``, ``UTC-04:00``, ``UTC+05:45``: the offset a person can compare."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d}"
