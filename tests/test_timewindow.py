"""Validity windows and typed starts around daylight-saving changes, as a person reads them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.conversation.timewindow import (
    clock_change_notice,
    describe_window,
    known_zone,
    parse_start,
    spoken_duration,
    zone,
)


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    """Epoch seconds of a UTC wall time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("nbf", "exp", "zone", "shown"),
    [
        (at(2026, 12, 1, 8), at(2026, 12, 1, 10), "Europe/Paris",
         "Tue 1 Dec 2026 09:00 to 11:00 (Europe/Paris)"),
        (at(2026, 12, 1, 8), at(2026, 12, 8, 8), "Europe/Paris",
         "Tue 1 Dec 2026 09:00 to Tue 8 Dec 09:00 (Europe/Paris)"),
        (at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1, 30), "Europe/Paris",
         "Sun 25 Oct 2026 02:30 UTC+02:00 to 02:30 UTC+01:00 (Europe/Paris)"),
        (at(2026, 10, 24, 23, 30), at(2026, 10, 25, 1, 30), "Europe/Paris",
         "Sun 25 Oct 2026 01:30 UTC+02:00 to 02:30 UTC+01:00 (Europe/Paris)"),
        (at(2026, 10, 25, 0, 10), at(2026, 10, 25, 0, 40), "Europe/Paris",
         "Sun 25 Oct 2026 02:10 UTC+02:00 to 02:40 UTC+02:00 (Europe/Paris)"),
        (at(2026, 10, 25, 1, 10), at(2026, 10, 25, 1, 40), "Europe/Paris",
         "Sun 25 Oct 2026 02:10 UTC+01:00 to 02:40 UTC+01:00 (Europe/Paris)"),
        (at(2026, 3, 29, 0, 30), at(2026, 3, 29, 2, 30), "Europe/Paris",
         "Sun 29 Mar 2026 01:30 UTC+01:00 to 04:30 UTC+02:00 (Europe/Paris)"),
        (at(2026, 10, 23, 7), at(2026, 10, 30, 7), "Europe/Paris",
         "Fri 23 Oct 2026 09:00 UTC+02:00 to Fri 30 Oct 08:00 UTC+01:00 (Europe/Paris)"),
        (at(2026, 11, 1, 5, 30), at(2026, 11, 1, 7), "America/New_York",
         "Sun 1 Nov 2026 01:30 UTC-04:00 to 02:00 UTC-05:00 (America/New_York)"),
        (at(2026, 10, 3, 15, 0), at(2026, 10, 3, 16, 0), "Australia/Lord_Howe",
         "Sun 4 Oct 2026 01:30 UTC+10:30 to 03:00 UTC+11:00 (Australia/Lord_Howe)"),
        (at(2026, 12, 1, 3, 15), at(2026, 12, 1, 5, 15), "Asia/Kathmandu",
         "Tue 1 Dec 2026 09:00 to 11:00 (Asia/Kathmandu)"),
        (at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1, 30), "UTC",
         "Sun 25 Oct 2026 00:30 to 01:30 (UTC)"),
    ],
    ids=["ordinary", "a week", "autumn, the repeated hour", "autumn, across the change",
         "within the first 02:00-03:00", "within the second 02:00-03:00", "spring",
         "a week across the change", "New York autumn", "Lord Howe half-hour change",
         "Kathmandu, no change", "UTC"],
)
def test_offsets_are_shown_exactly_where_wall_times_would_mislead(
    nbf: int, exp: int, zone: str, shown: str
) -> None:
    """Across a clock change, or at a time that happens twice; nowhere else."""
    assert describe_window(nbf, exp, ZoneInfo(zone)) == shown


@pytest.mark.parametrize(
    ("nbf", "exp", "zone", "shown"),
    [
        (at(2026, 12, 1, 8), at(2026, 12, 1, 10), "Europe/Paris",
         "Tue 1 Dec 2026 09:00 to 11:00 (Europe/Paris, UTC+01:00)"),
        (at(2026, 12, 1, 3, 15), at(2026, 12, 1, 5, 15), "Asia/Kathmandu",
         "Tue 1 Dec 2026 09:00 to 11:00 (Asia/Kathmandu, UTC+05:45)"),
        (at(2026, 3, 29, 0, 30), at(2026, 3, 29, 2, 30), "Europe/Paris",
         "Sun 29 Mar 2026 01:30 UTC+01:00 to 04:30 UTC+02:00 (Europe/Paris)"),
        (at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1, 30), "Europe/Paris",
         "Sun 25 Oct 2026 02:30 UTC+02:00 to 02:30 UTC+01:00 (Europe/Paris)"),
    ],
    ids=["ordinary", "Kathmandu", "spring", "autumn"],
)
def test_a_guests_window_carries_its_offset_once(
    nbf: int, exp: int, zone: str, shown: str
) -> None:
    """A guest may live in another zone: the offset is always there, and never said twice
    (not once per time and again for the window)."""
    text = describe_window(nbf, exp, ZoneInfo(zone), offset=True)
    assert text == shown
    assert all(text.count(part) == 1 for part in set(re.findall(r"UTC[+-]\d\d:\d\d", text)))


@pytest.mark.parametrize(
    ("zone", "day", "clock", "notice"),
    [
        ("Europe/Paris", "2026-03-29", "02:30",
         "02:30 does not exist on Sun 29 Mar in Europe/Paris: the clocks go forward then. "
         "The start is 03:30 instead."),
        ("America/New_York", "2026-03-08", "02:00",
         "02:00 does not exist on Sun 8 Mar in America/New_York: the clocks go forward then. "
         "The start is 03:00 instead."),
        ("Australia/Lord_Howe", "2026-10-04", "02:15",
         "02:15 does not exist on Sun 4 Oct in Australia/Lord_Howe: the clocks go forward then. "
         "The start is 02:45 instead."),
        ("Europe/Paris", "2026-10-25", "02:30",
         "02:30 happens twice on Sun 25 Oct in Europe/Paris: the clocks go back then. "
         "The start is the first 02:30, UTC+02:00."),
        ("America/New_York", "2026-11-01", "01:00",
         "01:00 happens twice on Sun 1 Nov in America/New_York: the clocks go back then. "
         "The start is the first 01:00, UTC-04:00."),
        ("Europe/Paris", "2026-03-29", "03:00", None),
        ("Europe/Paris", "2026-10-25", "03:00", None),
        ("UTC", "2026-03-29", "02:30", None),
    ],
)
def test_a_typed_start_the_clocks_skip_or_repeat_is_explained(
    zone: str, day: str, clock: str, notice: str | None
) -> None:
    start = parse_start(day, clock, ZoneInfo(zone))
    assert start is not None
    assert clock_change_notice(start) == notice


def test_the_notice_and_the_window_agree_on_the_time_used() -> None:
    """The 03:30 the notice promises is the 03:30 the window shows, and the instant sent."""
    paris = ZoneInfo("Europe/Paris")
    start = parse_start("2026-03-29", "02:30", paris)
    assert start is not None
    nbf = int(start.timestamp())
    assert nbf == at(2026, 3, 29, 1, 30)
    assert describe_window(nbf, nbf + 7200, paris) == (
        "Sun 29 Mar 2026 03:30 to 05:30 (Europe/Paris)")


@pytest.mark.parametrize("name", ["Europe", "America", "Mars/Olympus", "../../etc/passwd", "UTC "])
def test_a_name_that_is_no_zone_falls_back_to_the_default(name: str) -> None:
    """A region ("Europe" is a folder of zones), a typo or a path is no zone, wherever the zone
    database comes from (the system's or the tzdata package, where a folder raises OSError)."""
    assert known_zone(name) is None
    assert zone(name, "Europe/Paris") == ZoneInfo("Europe/Paris")
    assert zone(name, "Europe") == UTC


def test_a_real_zone_is_the_persons() -> None:
    assert zone("Asia/Kolkata", "Europe/Paris") == ZoneInfo("Asia/Kolkata")


@pytest.mark.parametrize(("minutes", "spoken"),
                         [(1, "1 minute"), (15, "15 minutes"), (60, "1 hour"),
                          (90, "1 hour 30 minutes"), (1440 + 120, "1 day 2 hours"),
                          (7 * 1440, "7 days")])
def test_a_duration_is_said_in_words(minutes: int, spoken: str) -> None:
    assert spoken_duration(timedelta(minutes=minutes)) == spoken
