"""What a person asked for, from the form or the ``meet`` quick path, checked field by field.

Card inputs arrive as strings (toggles "true"/"false", multi-selects comma-separated) and anyone
can forge them, so everything is validated here again whatever the card allowed, and a value that
is not a string is refused by name rather than guessed at. The quick path's ``key=value`` options
are translated into the same inputs and go through the same checks. Every problem found is
raised at once, as :class:`~bot.errors.InvalidRequest` naming each field as the form labels it.

A meeting is an appointment (a start, typed or now, and a duration) and its links' validity
covers it with a margin: :func:`link_window` is where that rule lives.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.conversation.channels import GuestChannel, read_contact
from bot.conversation.contacts import MASK, Contact, parse_contacts
from bot.conversation.reminders import lead_time
from bot.conversation.timewindow import (
    clock_change_notice,
    parse_duration,
    parse_start,
    spoken_duration,
)
from bot.errors import FieldError, InvalidRequest
from bot.limits import (
    AFTER_END,
    DEFAULT_DURATION,
    DEFAULT_VALID_FOR,
    DURATION_RANGE,
    JOIN_EARLY,
    LINK_COUNT_RANGE,
    MAX_CONTACTS,
    MAX_DEVICES,
    MAX_DURATION,
    MAX_LINKS,
    MAX_VALIDITY,
    MIN_DURATION,
    MIN_VALIDITY,
    NO_LINKS,
    TOO_MANY_DEVICES,
    TOO_MANY_LINKS,
    VALIDITY_RANGE,
)
from bot.text_safety import disguise_problem
from bot.upstream.instant_connect import MeetingRequest, is_sip_uri, unique_sub
from cards import inputs as ids
from cards.inputs import CatalogDevice

MAX_START_AHEAD = timedelta(days=365)
ALREADY_OVER = "With this start and validity the links would already be over."

LABELS = ids.LABELS

QUICK_OPTIONS = {
    "hosts": ids.HOSTS,
    "guests": ids.GUESTS,
    "valid": ids.VALID_FOR,
    "short": ids.SHORT_LINKS,
    "type": ids.VERTICAL,
    "vertical": ids.VERTICAL,
    "login": ids.HOST_LOGIN,
    "private": ids.PRIVATE_HOST_LINKS,
    "date": ids.START_DATE,
    "time": ids.START_TIME,
    "for": ids.DURATION,
    "device": ids.DEVICES,
    "devices": ids.DEVICES,
    "to": ids.GUEST_CONTACTS,
    "note": ids.GUEST_NOTE,
    "lang": ids.GUEST_LANGUAGE,
    "remind": ids.REMIND_BEFORE,
}
Problem = Callable[[str, str], None]
"""Reports one problem: the input id and a sentence for the person."""
_YES = {"true", "yes", "on", "1"}
_NO = {"false", "no", "off", "0"}
_SPANS = {  # a field that takes a duration: its range, and what to ask when outside it
    ids.VALID_FOR: (MIN_VALIDITY, MAX_VALIDITY,
                    f"Choose how long the links stay valid, {VALIDITY_RANGE}."),
    ids.DURATION: (MIN_DURATION, MAX_DURATION,
                   f"Choose how long the meeting lasts, {DURATION_RANGE}."),
}


@dataclass(frozen=True)
class MeetingPlan:
    """A meeting request a person made, every field checked and typed.

    The meeting itself is ``start`` (None: now) for ``duration``; ``valid_for`` is how long the
    person asked its links to work, which :func:`link_window` stretches to cover the meeting.
    """

    subject: str
    hosts: int
    guests: int
    devices: tuple[str, ...]
    short_links: bool
    vertical: str
    host_login: bool
    start: datetime | None
    duration: timedelta
    valid_for: timedelta
    private_host_links: bool
    notices: tuple[str, ...] = ()
    """What the person should know about how their request was read (a start time the clocks
    skip or repeat, guests added for the contacts), shown with the links."""
    contacts: tuple[Contact, ...] = ()
    """Where guest links go outside Webex: guest 1 to the first contact, and so on."""
    guest_note: str = ""
    language: str = ids.DEFAULT_GUEST_LANGUAGE
    """What the guests read: one of GUEST_LANGUAGES."""
    remind_before: timedelta | None = None
    """How long before the start the guests are reminded; None: not at all."""

    def appointment(self, now: float) -> tuple[int, int]:
        """When the meeting is, as epoch seconds: its start (``now`` without one) and its end."""
        return appointment(self.start, self.duration, now)

    def request(self, key: str, now: float) -> MeetingRequest:
        """The broker request; ``key`` (an action or message id) makes the ``sub`` unique."""
        nbf, exp = link_window(self.start, self.valid_for, now, self.duration)
        return MeetingRequest(
            sub=unique_sub(self.subject, key),
            nbf=nbf,
            exp=exp,
            devices=self.devices,
            num_host=self.hosts,
            num_guest=self.guests,
            provide_short_urls=self.short_links,
            vertical_type=self.vertical,
            login_url_for_host=self.host_login,
        )


def appointment(start: datetime | None, duration: timedelta, now: float) -> tuple[int, int]:
    """A meeting's start (``now`` when none was typed) and end, as epoch seconds."""
    begin = int(start.timestamp()) if start else int(now)
    return begin, begin + int(duration.total_seconds())


def link_window(
    start: datetime | None, valid_for: timedelta, now: float, duration: timedelta | None = None
) -> tuple[int | None, int]:
    """The broker's ``nbf`` and ``exp``: when the links work.

    For a meeting (with its ``duration``) the links cover the appointment with a margin, since
    people join early and meetings overrun: they open JOIN_EARLY before a typed start (no
    ``nbf`` for a meeting that starts now: they work at once), and work ``valid_for`` from the
    start or until AFTER_END after the meeting's end, whichever is later; a validity too short
    for the meeting is stretched, never the meeting cut. Without a ``duration`` (the ``links``
    command asks for a window, not a meeting) they work from ``start`` (none: now) for
    ``valid_for``, exactly. Epoch seconds count real hours, also across a clock change.
    """
    if duration is None:
        begin = start.timestamp() if start else now
        return (int(begin) if start else None), int(begin + valid_for.total_seconds())
    begin, end = appointment(start, duration, now)
    opens = begin - int(JOIN_EARLY.total_seconds()) if start else None
    return opens, max(begin + int(valid_for.total_seconds()), end + int(AFTER_END.total_seconds()))


def validity(text: str) -> timedelta:
    """How long links stay valid, from ``30m``, ``2h`` or ``7d``; InvalidRequest naming the
    field when it is unreadable or outside the range the chat allows."""
    errors: list[FieldError] = []
    duration = _span(text, ids.VALID_FOR, lambda field, message: errors.append(
        FieldError(LABELS[field], message)))
    if duration is None:
        raise InvalidRequest(errors)
    return duration


@dataclass(frozen=True)
class PlanContext:
    """What the checks need besides the inputs: the catalog, the clock and the person's zone."""

    catalog: Sequence[CatalogDevice]
    tz: tzinfo
    now: datetime
    group_space: bool
    default_valid_for: str = DEFAULT_VALID_FOR
    channels: Sequence[GuestChannel] = ()  # how guests can be reached, set up or not
    phone_region: str | None = None  # where a number typed without + is read
    guest_language: str = ids.DEFAULT_GUEST_LANGUAGE  # GUEST_LANGUAGE: unless one is chosen
    remind_before: str = ids.DEFAULT_REMIND_BEFORE  # REMIND_BEFORE: unless one is chosen


def plan_from_inputs(inputs: Mapping[str, object], context: PlanContext) -> MeetingPlan:
    """The plan the inputs describe; InvalidRequest with every problem when they cannot."""
    errors: list[FieldError] = []

    def problem(field: str, message: str) -> None:
        errors.append(FieldError(LABELS[field], message))

    reader = _Inputs(inputs, problem)

    subject = _subject(reader.text(ids.SUBJECT), problem)
    hosts = _count(reader.text(ids.HOSTS), ids.HOSTS, problem)
    guests = _count(reader.text(ids.GUESTS), ids.GUESTS, problem)
    contacts = _contacts(reader.text(ids.GUEST_CONTACTS) or "", context, problem)
    note = _note(reader.text(ids.GUEST_NOTE) or "", problem)
    notices = []
    if guests is not None and len(contacts) > guests:
        notices.append(f"{len(contacts)} guests: one for each contact.")
        guests = len(contacts)
    if hosts is not None and guests is not None:
        if hosts + guests > MAX_LINKS:
            problem(ids.GUESTS, TOO_MANY_LINKS)
        elif hosts + guests == 0:
            problem(ids.HOSTS, NO_LINKS)
    devices = _devices(reader, context.catalog, problem)
    flags = {
        name: reader.flag(name, default, problem)
        for name, default in (
            (ids.SHORT_LINKS, True),
            (ids.HOST_LOGIN, True),
            (ids.PRIVATE_HOST_LINKS, context.group_space),
        )
    }
    vertical = (reader.text(ids.VERTICAL) or "").lower() or ids.DEFAULT_VERTICAL
    language = (reader.text(ids.GUEST_LANGUAGE) or "").lower() or context.guest_language
    if language not in ids.GUEST_LANGUAGES:
        problem(ids.GUEST_LANGUAGE, f"Choose one of {', '.join(ids.GUEST_LANGUAGES)}.")
    remind_before = _lead(reader.text(ids.REMIND_BEFORE), context, problem)
    if vertical not in ids.VERTICAL_CHOICES:
        problem(ids.VERTICAL, "Choose General or Healthcare.")
    valid_for = _span(reader.text(ids.VALID_FOR) or context.default_valid_for, ids.VALID_FOR,
                      problem)
    duration = _span(reader.text(ids.DURATION) or DEFAULT_DURATION, ids.DURATION, problem)
    start = _start(reader.text(ids.START_DATE), reader.text(ids.START_TIME), context, problem)
    stretched = None
    if valid_for and duration:
        stretched = _stretched(start, valid_for, duration, context.now.timestamp(), problem)
    if errors:
        raise InvalidRequest(errors)
    assert hosts is not None and guests is not None
    assert valid_for is not None and duration is not None
    notice = clock_change_notice(start) if start else None
    notices += [text for text in (notice, stretched) if text]
    return MeetingPlan(
        subject=subject,
        hosts=hosts,
        guests=guests,
        devices=devices,
        short_links=flags[ids.SHORT_LINKS],
        vertical=vertical,
        host_login=flags[ids.HOST_LOGIN],
        start=start,
        duration=duration,
        valid_for=valid_for,
        private_host_links=flags[ids.PRIVATE_HOST_LINKS] and context.group_space,
        notices=tuple(notices),
        contacts=contacts,
        guest_note=note,
        language=language,
        remind_before=remind_before,
    )


def inputs_from_options(
    subject: str, options: Mapping[str, str], catalog: Sequence[CatalogDevice]
) -> dict[str, str]:
    """The quick path's ``guests=3 valid=4h device=Lab`` as the form's inputs; InvalidRequest
    naming each unknown option."""
    inputs = {ids.SUBJECT: subject}
    unknown = sorted(set(options) - set(QUICK_OPTIONS))
    if unknown:
        known = ", ".join(f"{name}=" for name in QUICK_OPTIONS)
        raise InvalidRequest(
            [FieldError(f"Option {name}", f"Not an option; use {known}") for name in unknown])
    by_name = {device.name.lower(): device.sip_uri for device in catalog}
    for name, value in options.items():
        field = QUICK_OPTIONS[name]
        if field != ids.DEVICES:
            inputs[field] = value
            continue
        for entry in filter(None, (part.strip() for part in value.split(","))):
            key = ids.DEVICES if entry.lower() in by_name else ids.EXTRA_DEVICES
            entry = by_name.get(entry.lower(), entry)
            inputs[key] = ",".join(filter(None, [inputs.get(key, ""), entry]))
    return inputs


class _Inputs:
    """Reads each submitted input once, as text; any other JSON value is reported, never guessed.

    Webex sends every input as a string, so a number, true/false, null, a list or an object can
    only come from a forged submit: reading it as a default would hide the forgery.
    """

    def __init__(self, inputs: Mapping[str, object], problem: Problem) -> None:
        self._inputs = inputs
        self._problem = problem

    def text(self, name: str) -> str | None:
        """The input stripped ("" when absent), or None once its non-text value was reported."""
        value = self._inputs.get(name, "")
        if isinstance(value, str):
            return value.strip()
        self._problem(name, f"Must be text, but this submit sent {_json_kind(value)}.")
        return None

    def flag(self, name: str, default: bool, problem: Problem) -> bool:
        value = (self.text(name) or "").lower()
        if not value:
            return default
        if value in _YES or value in _NO:
            return value in _YES
        problem(name, "Must be on or off (true or false).")
        return default


def _json_kind(value: object) -> str:
    """A JSON value that is not a string, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    return "a list" if isinstance(value, list) else "an object"


def _subject(text: str | None, problem: Problem) -> str:
    """One line of what people can type; a byte-order mark in front is a paste artefact."""
    if text is None:
        return ""
    subject = " ".join(text.removeprefix("\ufeff").split())
    if not subject:
        problem(ids.SUBJECT, "Give the meeting a subject, e.g. Patient follow-up.")
    elif len(subject) > ids.MAX_SUBJECT_LENGTH:
        problem(ids.SUBJECT, f"Keep it to {ids.MAX_SUBJECT_LENGTH} characters or fewer.")
    elif hidden := disguise_problem(subject):
        problem(ids.SUBJECT, hidden)
    return subject


def _contacts(text: str, context: PlanContext, problem: Problem) -> tuple[Contact, ...]:
    """The guests' addresses; each bad one named (masked in a group space), and a channel the
    bot cannot use refused."""
    contacts, bad = parse_contacts(
        text, lambda entry: read_contact(context.channels, entry, context.phone_region))
    for entry in bad:
        shown = f"{entry.typed[:1]}{MASK * 3}" if context.group_space else entry.typed[:60]
        problem(ids.GUEST_CONTACTS, f"'{shown}' {entry.reason}")
    for channel in context.channels:
        if not channel.ready and any(c.channel == channel.name for c in contacts):
            problem(ids.GUEST_CONTACTS, channel.not_set_up)
    if len(contacts) > MAX_CONTACTS:
        problem(ids.GUEST_CONTACTS, f"At most {MAX_CONTACTS} contacts per meeting.")
    return tuple(contacts)


def _note(text: str, problem: Problem) -> str:
    """A few words for the guests, kept as typed (lines included) but for what hides text."""
    if len(text) > ids.MAX_NOTE_LENGTH:
        problem(ids.GUEST_NOTE, f"Keep it to {ids.MAX_NOTE_LENGTH} characters or fewer.")
    elif hidden := disguise_problem(text.replace("\n", " ").replace("\r", " ")):
        problem(ids.GUEST_NOTE, hidden)
    return text


def _lead(text: str | None, context: PlanContext, problem: Problem) -> timedelta | None:
    """When the guests are reminded: as chosen, else the deployment's default."""
    try:
        return lead_time(text or context.remind_before)
    except ValueError as error:
        problem(ids.REMIND_BEFORE, str(error))
        return None


def _count(text: str | None, field: str, problem: Problem) -> int | None:
    if text is None:
        return None
    if not text:
        return 1
    number = _whole_number(text)
    if number is None or number > MAX_LINKS:
        problem(field, LINK_COUNT_RANGE)
        return None
    return number


def _whole_number(text: str) -> int | None:
    """Digits of one script as people type them: ``12``, ``١٢``, ``۱۲``, ``१२``, full-width 12.

    Nothing else: ``int`` would also read a sign and ``1_0``, ``float`` ``1e1`` and ``1.0``.
    """
    if not text.isdecimal():
        return None
    zeros = {ord(char) - unicodedata.decimal(char) for char in text}
    if len(zeros) != 1:
        return None  # digits of two scripts are a slip, not a number anybody wrote
    significant = text.lstrip(chr(zeros.pop()))
    # Three digits are out of range anyway, and int() refuses thousands of them with an error.
    return int(significant or "0") if len(significant) <= 2 else None


def _split_addresses(text: str) -> list[str]:
    return [entry for entry in re.split(r"[\s,;]+", text) if entry]


def _devices(
    reader: _Inputs, catalog: Sequence[CatalogDevice], problem: Problem
) -> tuple[str, ...]:
    known = {device.sip_uri.lower(): device.sip_uri for device in catalog}
    chosen: dict[str, str] = {}
    for entry in _split_addresses(reader.text(ids.DEVICES) or ""):
        if entry.lower() in known:
            chosen[entry.lower()] = known[entry.lower()]
        else:
            problem(ids.DEVICES, f"'{entry[:60]}' is not one of the configured devices.")
    for entry in _split_addresses(reader.text(ids.EXTRA_DEVICES) or ""):
        if is_sip_uri(entry):
            chosen.setdefault(entry.lower(), entry)
        else:
            problem(ids.EXTRA_DEVICES, f"'{entry[:60]}' is not a SIP address like a@example.com.")
    if len(chosen) > MAX_DEVICES:
        problem(ids.EXTRA_DEVICES, TOO_MANY_DEVICES)
    return tuple(chosen.values())


def _span(text: str, field: str, problem: Problem) -> timedelta | None:
    """A duration typed for ``field`` (``30m``, ``2h``, ``7d``), within that field's range."""
    shortest, longest, ask = _SPANS[field]
    duration = parse_duration(text)
    if duration is None or not shortest <= duration <= longest:
        problem(field, ask)
        return None
    return duration


def _stretched(
    start: datetime | None, valid_for: timedelta, duration: timedelta, now: float,
    problem: Problem,
) -> str | None:
    """What to tell a person whose links last longer than asked, to cover the meeting; a start
    whose links would already be over is refused."""
    _, exp = link_window(start, valid_for, now, duration)
    if exp <= now:
        problem(ids.START_DATE, ALREADY_OVER)
        return None
    begin = start.timestamp() if start else now
    if exp <= begin + valid_for.total_seconds():
        return None
    return (f"The links stay valid until {spoken_duration(AFTER_END)} after the meeting ends, "
            f"not just {spoken_duration(valid_for)} from its start.")


def _start(
    day: str | None, clock: str | None, context: PlanContext, problem: Problem
) -> datetime | None:
    if day is None or clock is None or (not day and not clock):
        return None
    today = context.now.astimezone(context.tz).date().isoformat()
    start = parse_start(day or today, clock, context.tz)
    if start is None:
        bad_day = day and parse_start(day, "", context.tz) is None
        field = ids.START_DATE if bad_day else ids.START_TIME
        problem(field, "Use a date like 2026-12-01 and a time like 09:30.")
        return None
    if start - context.now > MAX_START_AHEAD:
        problem(ids.START_DATE, "Pick a start within the next year.")
        return None
    if context.now - start > MAX_VALIDITY:  # over whatever the validity (and year 1 is no date)
        problem(ids.START_DATE, ALREADY_OVER)
        return None
    return start


def new_start(
    inputs: Mapping[str, object], meeting_id: str, tz: tzinfo, now: datetime
) -> datetime:
    """The new start a meetings card's "Change the time" asks for (its inputs are named after
    the meeting); InvalidRequest naming each field to fix."""
    errors: list[FieldError] = []

    def problem(field: str, message: str) -> None:
        errors.append(FieldError(LABELS[field], message))

    reader = _Inputs(inputs, problem)
    day = reader.text(ids.meeting_input(ids.NEW_START_DATE, meeting_id)) or ""
    clock = reader.text(ids.meeting_input(ids.NEW_START_TIME, meeting_id)) or ""
    start = parse_start(day, clock, tz) if day and clock else None
    if start is None:
        field = ids.NEW_START_DATE if not day or parse_start(day, "", tz) is None else (
            ids.NEW_START_TIME)
        problem(field, "Use a date like 2026-12-01 and a time like 09:30.")
    elif start < now:
        problem(ids.NEW_START_TIME, "Pick a time that is still to come.")
    elif start - now > MAX_START_AHEAD:
        problem(ids.NEW_START_DATE, "Pick a start within the next year.")
    if errors or start is None:
        raise InvalidRequest(errors)
    return start
