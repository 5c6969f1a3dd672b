"""The meetings card: a person's meetings, a page at a time, with buttons to act on each.

Each meeting shows what it is and, while it can still happen and the viewer may act on it, its
buttons: host links sent privately, guest links sent again, a new time (a card that opens in
place with a date and a time), and a cancel that asks first. Everything a person typed (the
subject, devices, contacts) is shown literally, never read as markdown.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cards.elements import Element, card, heading, literal_text, text_block
from cards.inputs import (
    ACTION,
    ACTION_CANCEL_MEETING,
    ACTION_CHANGE_TIME,
    ACTION_LIST_MEETINGS,
    ACTION_RESEND_GUEST_LINKS,
    ACTION_SEND_HOST_LINKS,
    ACTION_SHOW_FORM,
    CARD_BUDGET,
    LABELS,
    MAX_SUBJECT_LENGTH,
    MEETING,
    MEETINGS_PER_PAGE,
    NEW_START_DATE,
    NEW_START_TIME,
    PAGE,
    meeting_input,
)


class MeetingStatus(StrEnum):
    """Where a meeting stands; only upcoming and current ones can still be acted on."""

    UPCOMING = "upcoming"
    IN_PROGRESS = "in progress"
    ENDED = "ended"
    CANCELLED = "cancelled"

    @property
    def actionable(self) -> bool:
        return self in (MeetingStatus.UPCOMING, MeetingStatus.IN_PROGRESS)


@dataclass(frozen=True)
class GuestReached:
    """One guest sent their link outside Webex: the contact as this viewer may see it (masked
    outside the maker's 1:1 space) and what became of it ("email sent", "text message failed")."""

    contact: str
    outcome: str


@dataclass(frozen=True)
class MeetingSummary:
    """One meeting as the meetings card shows it; times are already in the viewer's zone."""

    meeting_id: str
    subject: str
    when: str  # the appointment, e.g. "Tue 1 Dec 2026 09:00 to 09:30 (Europe/Paris)"
    status: MeetingStatus
    hosts: int = 0
    guests: int = 0
    devices: tuple[str, ...] = ()
    reached: tuple[GuestReached, ...] = ()  # guest 1 first
    made_by: str = ""  # who made it, shown where others may have (a group space)
    moved: bool = False  # its time was changed at least once
    can_act: bool = True  # whether the viewer may press its buttons
    start_date: str = ""  # YYYY-MM-DD and HH:MM: what the change-time inputs start at
    start_time: str = ""


@dataclass(frozen=True)
class Detail:
    """How many devices and guests each meeting lists; the rest are counted ("and 7 more")."""

    devices: int
    guests: int


# From the most detail to the least: a page gets the first that keeps it within CARD_BUDGET.
DETAILS = (Detail(devices=3, guests=10), Detail(devices=3, guests=3), Detail(devices=0, guests=0))
LONGEST_SHOWN = 60  # characters of a name, device, contact or outcome; longer ones end in "…"
LONGEST_WHEN = 120  # characters of a meeting's time, its zone's name included
WORD_BREAK_EVERY = 20  # characters; 20 of the widest fit in a line of the card
_LONG_WORD = re.compile(rf"([^\s-]{{{WORD_BREAK_EVERY}}})(?=[^\s-])")  # a line breaks at - too
STATUS_COLORS = {
    MeetingStatus.UPCOMING: "accent",
    MeetingStatus.IN_PROGRESS: "good",
    MeetingStatus.ENDED: "default",
    MeetingStatus.CANCELLED: "attention",
}


def meetings_card(
    meetings: Sequence[MeetingSummary],
    *,
    timezone_name: str,
    in_space: bool,
    page: int = 1,
    has_more: bool = False,
) -> Element:
    """One page of meetings, newest first; "Older" and "Newer" ask for the pages beside it.

    `in_space` says the list is of the meetings made in a group space rather than the viewer's
    own. At most MEETINGS_PER_PAGE meetings fit: a fuller page could pass Webex's card size.
    """
    if len(meetings) > MEETINGS_PER_PAGE:
        raise ValueError(f"at most {MEETINGS_PER_PAGE} meetings fit on a page")
    for detail in DETAILS:
        content = _page(meetings, timezone_name, in_space, page, has_more, detail)
        if len(json.dumps(content).encode("utf-8")) <= CARD_BUDGET:
            break
    return content


def _page(
    meetings: Sequence[MeetingSummary],
    timezone_name: str,
    in_space: bool,
    page: int,
    has_more: bool,
    detail: Detail,
) -> Element:
    """The page at one level of detail."""
    title = "Meetings made in this space" if in_space else "Your meetings"
    if page > 1:
        title += f" (page {page})"
    body: list[Element] = [heading(title)]
    if meetings:
        body.append(text_block("Upcoming and recent, newest first.", isSubtle=True,
                               spacing="none"))
        body += [_meeting(meeting, timezone_name, detail) for meeting in meetings]
    elif page > 1:
        body.append(text_block("No older meetings."))
    else:
        body.append(text_block(
            "No meetings were made in this space lately." if in_space
            else "You have made no meetings lately."))
    actions = []
    if has_more and meetings:
        actions.append(_page_button("Older", page + 1))
    if page > 1:
        actions.append(_page_button("Newer", page - 1))
    if not meetings and page == 1:
        actions.append({"type": "Action.Submit", "title": "Make a meeting",
                        "data": {ACTION: ACTION_SHOW_FORM}})
    return card(body, actions)


def change_time_card(meeting: MeetingSummary, *, timezone_name: str) -> Element:
    """A new date and time for one meeting, as a card of its own (the meetings card opens the
    same in place)."""
    body, actions = _change_time(meeting, timezone_name)
    return card([*_named(meeting), *body], actions)


def cancel_card(meeting: MeetingSummary) -> Element:
    """The question before a meeting is cancelled, as a card of its own (the meetings card opens
    the same in place)."""
    body, actions = _cancel(meeting)
    return card([*_named(meeting), *body], actions)


def _named(meeting: MeetingSummary) -> list[Element]:
    """The meeting a card of its own is about: its subject and time."""
    return [heading(_shown(meeting.subject, MAX_SUBJECT_LENGTH)),
            {**literal_text(_clipped(meeting.when, LONGEST_WHEN)), "spacing": "none"}]


def _meeting(meeting: MeetingSummary, timezone_name: str, detail: Detail) -> Element:
    """A meeting's facts under its subject, and its buttons when it can still be acted on."""
    status = meeting.status.value.capitalize()
    if meeting.moved and meeting.status.actionable:
        status += ", moved"
    items: list[Element] = [
        literal_text(_shown(meeting.subject, MAX_SUBJECT_LENGTH), weight="bolder"),
        {
            "type": "RichTextBlock",
            "spacing": "none",
            "inlines": [
                {"type": "TextRun", "text": status, "color": STATUS_COLORS[meeting.status],
                 "weight": "bolder"},
                {"type": "TextRun", "text": f" · {_clipped(meeting.when, LONGEST_WHEN)}"},
            ],
        },
    ]
    facts = []
    if meeting.made_by:
        facts.append(("Made by", _shown(meeting.made_by)))
    facts.append(("Links", _links(meeting.hosts, meeting.guests)))
    if meeting.devices:
        facts.append(("Devices", _some(meeting.devices, detail.devices)))
    shown = meeting.reached[:detail.guests]
    facts += [(f"Guest {number}", f"{_shown(guest.contact)}: {_shown(guest.outcome)}")
              for number, guest in enumerate(shown, start=1)]
    if len(meeting.reached) > len(shown):
        more = len(meeting.reached) - len(shown)
        facts.append(("Other guests" if shown else "Guests sent links", str(more)))
    items += [_fact(title, value) for title, value in facts]
    if meeting.can_act and meeting.status.actionable:
        items += _buttons(meeting, timezone_name)
    return {"type": "Container", "separator": True, "spacing": "large", "items": items}


def _buttons(meeting: MeetingSummary, timezone_name: str) -> list[Element]:
    """Two rows of buttons: four do not fit side by side in a message, two long ones neither.

    Each row holds a long title beside a short one; a row's card opens under it.
    """
    first = [_show_card("Change the time", *_change_time(meeting, timezone_name))]
    if meeting.hosts:
        first.insert(0, _submit("Send me the host links", ACTION_SEND_HOST_LINKS, meeting))
    second = [_show_card("Cancel", *_cancel(meeting))]
    if meeting.reached:
        second.insert(0, _submit("Send the guests their links again", ACTION_RESEND_GUEST_LINKS,
                                 meeting))
    return [{"type": "ActionSet", "actions": first}, {"type": "ActionSet", "actions": second}]


def _change_time(
    meeting: MeetingSummary, timezone_name: str
) -> tuple[list[Element], list[Element]]:
    """Inputs for the new start, at the current one; the meeting keeps its length."""
    inputs = [
        {"type": "Input.Date", "id": meeting_input(NEW_START_DATE, meeting.meeting_id),
         "label": LABELS[NEW_START_DATE], "value": meeting.start_date, "isRequired": True,
         "errorMessage": "Pick a date."},
        {"type": "Input.Time", "id": meeting_input(NEW_START_TIME, meeting.meeting_id),
         "label": LABELS[NEW_START_TIME], "value": meeting.start_time, "isRequired": True,
         "errorMessage": "Pick a time."},
    ]
    body = [
        text_block(f"Move it to ({timezone_name} time):"),
        {"type": "ColumnSet", "columns": [
            {"type": "Column", "width": "stretch", "items": [item]} for item in inputs]},
        text_block("It keeps its length. Everyone who was sent links gets new ones for the "
                   "new time.", isSubtle=True, size="small"),
    ]
    return body, [_submit("Move the meeting", ACTION_CHANGE_TIME, meeting, style="positive")]


def _cancel(meeting: MeetingSummary) -> tuple[list[Element], list[Element]]:
    """Ask before cancelling, and say what cancelling cannot undo."""
    body = [
        text_block("Cancel this meeting? Guests who were sent links are told it is cancelled. "
                   "Links already sent stay valid until they end: Instant Connect cannot "
                   "withdraw them."),
    ]
    return body, [_submit("Yes, cancel the meeting", ACTION_CANCEL_MEETING, meeting,
                          style="destructive")]


def _submit(title: str, action: str, meeting: MeetingSummary, *, style: str = "") -> Element:
    """A button that tells the bot what to do with which meeting."""
    button: Element = {"type": "Action.Submit", "title": title,
                       "data": {ACTION: action, MEETING: meeting.meeting_id}}
    if style:
        button["style"] = style
    return button


def _show_card(title: str, body: list[Element], actions: list[Element]) -> Element:
    """A button that opens a small card in place, under its row of buttons."""
    return {"type": "Action.ShowCard", "title": title,
            "card": {"type": "AdaptiveCard", "body": body, "actions": actions}}


def _page_button(title: str, page: int) -> Element:
    return {"type": "Action.Submit", "title": title,
            "data": {ACTION: ACTION_LIST_MEETINGS, PAGE: str(page)}}


def _fact(title: str, value: str) -> Element:
    """A fact as one line, its title in bold and its value as typed."""
    return {
        "type": "RichTextBlock",
        "spacing": "none",
        "inlines": [
            {"type": "TextRun", "text": f"{title}: ", "weight": "bolder"},
            {"type": "TextRun", "text": value},
        ],
    }


def _links(hosts: int, guests: int) -> str:
    counts = [f"{n} {kind}{'' if n == 1 else 's'}"
              for n, kind in ((hosts, "host"), (guests, "guest")) if n]
    return ", ".join(counts) or "none"


def _some(names: Sequence[str], shown: int) -> str:
    """The first few names, and how many more there are."""
    if not shown:
        return str(len(names))
    text = ", ".join(_shown(name) for name in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _shown(text: str, longest: int = LONGEST_SHOWN) -> str:
    """Typed text cut to `longest` characters, with a place to break in every long word.

    Text as typed is shown in RichTextBlocks (never read as markdown), which do not break a
    word: one longer than the card is wide (an address, a subject typed without spaces) would
    widen the card. An invisible zero-width space every few characters lets it wrap.
    """
    return _LONG_WORD.sub("\\1\u200b", _clipped(text, longest))


def _clipped(text: str, longest: int) -> str:
    return text if len(text) <= longest else text[: longest - 1] + "…"
