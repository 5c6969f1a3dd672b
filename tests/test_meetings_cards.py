"""The meetings card: what each button submits, paging, who sees buttons, and Webex's limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bot.devtools.card_render.gallery import bot_cards
from cards.inputs import (
    ACTION,
    ACTION_CANCEL_MEETING,
    ACTION_CHANGE_TIME,
    ACTION_LIST_MEETINGS,
    ACTION_RESEND_GUEST_LINKS,
    ACTION_SEND_HOST_LINKS,
    ACTION_SHOW_FORM,
    CARD_BUDGET,
    MAX_SUBJECT_LENGTH,
    MEETING,
    MEETINGS_PER_PAGE,
    NEW_START_DATE,
    NEW_START_TIME,
    PAGE,
    meeting_input,
)
from cards.meetings import (
    GuestReached,
    MeetingStatus,
    MeetingSummary,
    cancel_card,
    change_time_card,
    meetings_card,
)
from tests.support.card_schema import validate_card

ZONE = "America/Argentina/Buenos_Aires"
WEBEX_MAX_ACTIONS = 5  # per row of buttons (Webex's cards guide; its host config's maxActions)
ZOE = GuestReached("z•••@example.org", "email sent")
UPCOMING = MeetingSummary(
    "m7Qx2", "Patient follow-up", f"Tue 1 Dec 2026 11:30 to 12:00 ({ZONE})",
    MeetingStatus.UPCOMING, hosts=1, guests=1, devices=("Exam Room 1",), reached=(ZOE,),
    start_date="2026-12-01", start_time="11:30",
)
# The longest a meeting can look: describe_window's longest time, a 36-character id, and
# every text a person types longer than the card shows it.
LONGEST_WHEN = f"Sun 25 Oct 2026 01:30 UTC+02:00 to Mon 26 Oct 02:30 UTC+01:00 ({ZONE})"


def longest(meeting_id: str, typed: str) -> MeetingSummary:
    """A meeting whose typed texts (subject, name, devices, contacts) are `typed` repeated."""
    return MeetingSummary(
        meeting_id, typed * 200, LONGEST_WHEN, MeetingStatus.UPCOMING, hosts=5, guests=20,
        devices=tuple(typed * 200 for _ in range(25)),
        reached=tuple(GuestReached(typed * 200, "text message may have been delivered")
                      for _ in range(10)),
        made_by=typed * 200, moved=True, start_date="2026-10-25", start_time="01:30",
    )


def page(meetings: list[MeetingSummary], **kwargs: Any) -> dict[str, Any]:
    return meetings_card(meetings, timezone_name=ZONE, in_space=kwargs.pop("in_space", False),
                         **kwargs)


def actions(node: Any) -> Iterator[dict[str, Any]]:
    """Every action of a card, those of the cards its buttons open included."""
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Action."):
            yield node
        for key, value in node.items():
            if key != "data":
                yield from actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from actions(item)


def action_rows(node: Any) -> Iterator[list[dict[str, Any]]]:
    """Every row of buttons: a card's actions and each ActionSet."""
    if isinstance(node, dict):
        if node.get("type") == "AdaptiveCard" and node.get("actions"):
            yield node["actions"]
        if node.get("type") == "ActionSet":
            yield node["actions"]
        for key, value in node.items():
            if key != "data":
                yield from action_rows(value)
    elif isinstance(node, list):
        for item in node:
            yield from action_rows(item)


def submits(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["data"] for a in actions(content) if a["type"] == "Action.Submit"]


def size(content: dict[str, Any]) -> int:
    """Bytes as the bot sends it: requests' JSON escapes every non-ASCII character."""
    return len(json.dumps(content).encode("utf-8"))


def every_meetings_card() -> list[tuple[str, dict[str, Any]]]:
    ended = replace(UPCOMING, meeting_id="m2", status=MeetingStatus.ENDED)
    return [
        *((name, c) for name, c in bot_cards() if name.startswith("meeting")),
        ("page-2-of-3", page([UPCOMING, ended], page=2, has_more=True, in_space=True)),
        ("longest", page([longest(f"{n:036d}", "é") for n in range(MEETINGS_PER_PAGE)])),
        ("none-later", page([], page=4)),
    ]


@pytest.mark.parametrize(("name", "content"), every_meetings_card(),
                         ids=[name for name, _ in every_meetings_card()])
def test_every_meetings_card_is_valid_for_webex(name: str, content: dict[str, Any]) -> None:
    validate_card(content)
    assert all(len(row) <= WEBEX_MAX_ACTIONS for row in action_rows(content)), name


def test_the_gallery_shows_the_meetings_cards() -> None:
    names = {name for name, _ in bot_cards()}
    assert {"meetings-1to1", "meetings-space-longest", "meetings-none", "meeting-change-time",
            "meeting-cancel"} <= names


def test_each_button_of_a_meeting_says_what_to_do_and_with_which_meeting() -> None:
    other = replace(UPCOMING, meeting_id="m9")
    found = submits(page([UPCOMING, other]))
    for meeting_id in ("m7Qx2", "m9"):
        asked = [data[ACTION] for data in found if data.get(MEETING) == meeting_id]
        assert asked == [ACTION_SEND_HOST_LINKS, ACTION_CHANGE_TIME,
                         ACTION_RESEND_GUEST_LINKS, ACTION_CANCEL_MEETING]
    assert all(MEETING in data for data in found if data[ACTION] != ACTION_LIST_MEETINGS)


def test_each_meeting_has_its_own_time_inputs_at_its_current_start() -> None:
    content = page([UPCOMING, replace(UPCOMING, meeting_id="m9", start_time="15:45")])
    [change, _] = [a for a in actions(content) if a.get("title") == "Change the time"]
    inputs = {column["items"][0]["id"]: column["items"][0]
              for element in change["card"]["body"] if element["type"] == "ColumnSet"
              for column in element["columns"]}
    date_id = meeting_input(NEW_START_DATE, "m7Qx2")
    time_id = meeting_input(NEW_START_TIME, "m7Qx2")
    assert inputs.keys() == {date_id, time_id}
    assert (inputs[date_id]["type"], inputs[date_id]["value"]) == ("Input.Date", "2026-12-01")
    assert (inputs[time_id]["type"], inputs[time_id]["value"]) == ("Input.Time", "11:30")
    assert all(i["isRequired"] for i in inputs.values())
    [submit] = change["card"]["actions"]
    assert submit["data"] == {ACTION: ACTION_CHANGE_TIME, MEETING: "m7Qx2"}


def test_cancel_asks_first() -> None:
    [cancel] = [a for a in actions(page([UPCOMING])) if a.get("title") == "Cancel"]
    assert cancel["type"] == "Action.ShowCard"  # pressing it sends nothing
    [confirm] = cancel["card"]["actions"]
    assert confirm["title"] == "Yes, cancel the meeting"
    assert confirm["data"] == {ACTION: ACTION_CANCEL_MEETING, MEETING: "m7Qx2"}
    assert "stay valid" in json.dumps(cancel["card"]["body"])


def test_guests_are_sent_their_links_again_only_when_some_were_sent_them() -> None:
    alone = replace(UPCOMING, reached=())
    asked = [data[ACTION] for data in submits(page([alone]))]
    assert ACTION_RESEND_GUEST_LINKS not in asked
    assert ACTION_SEND_HOST_LINKS in asked


def test_host_links_are_offered_only_when_the_meeting_has_hosts() -> None:
    guests_only = replace(UPCOMING, hosts=0)
    asked = [data[ACTION] for data in submits(page([guests_only]))]
    assert asked == [ACTION_CHANGE_TIME, ACTION_RESEND_GUEST_LINKS, ACTION_CANCEL_MEETING]


@pytest.mark.parametrize("status", [MeetingStatus.ENDED, MeetingStatus.CANCELLED])
def test_a_meeting_that_is_over_has_no_buttons(status: MeetingStatus) -> None:
    content = page([replace(UPCOMING, status=status)])
    assert list(actions(content)) == []
    assert status.value.capitalize() in json.dumps(content)


def test_a_meeting_the_viewer_may_not_act_on_has_no_buttons() -> None:
    content = page([replace(UPCOMING, can_act=False, made_by="Dr. Ana Beltrán")])
    assert list(actions(content)) == []
    assert "Dr. Ana Beltr" in json.dumps(content, ensure_ascii=False)


def test_a_meeting_under_way_can_still_be_acted_on() -> None:
    under_way = replace(UPCOMING, status=MeetingStatus.IN_PROGRESS)
    asked = [data[ACTION] for data in submits(page([under_way]))]
    assert ACTION_CANCEL_MEETING in asked


@pytest.mark.parametrize(
    ("number", "has_more", "expected"),
    [
        (1, False, []),
        (1, True, [("Older", "2")]),
        (2, True, [("Older", "3"), ("Newer", "1")]),
        (3, False, [("Newer", "2")]),
    ],
)
def test_pages_lead_to_the_pages_beside_them(
    number: int, has_more: bool, expected: list[tuple[str, str]]
) -> None:
    content = page([UPCOMING], page=number, has_more=has_more)
    paging = [(a["title"], a["data"][PAGE]) for a in content.get("actions", [])]
    assert paging == expected
    assert all(a["data"][ACTION] == ACTION_LIST_MEETINGS for a in content.get("actions", []))


def test_a_page_holds_at_most_its_share_of_meetings() -> None:
    with pytest.raises(ValueError):
        page([replace(UPCOMING, meeting_id=f"m{n}") for n in range(MEETINGS_PER_PAGE + 1)])


def test_no_meetings_offers_the_form_and_no_older_ones_the_newer_page() -> None:
    first = page([])
    assert [d[ACTION] for d in submits(first)] == [ACTION_SHOW_FORM]
    assert "no meetings" in json.dumps(first)
    later = page([], page=3, has_more=True)
    assert submits(later) == [{ACTION: ACTION_LIST_MEETINGS, PAGE: "2"}]


@pytest.mark.parametrize("typed", ["w", "é", "😀"], ids=["ascii", "accented", "emoji"])
def test_a_full_page_of_the_longest_meetings_stays_within_the_card_budget(typed: str) -> None:
    meetings = [longest(f"{n:036d}", typed) for n in range(MEETINGS_PER_PAGE)]
    content = page(meetings, page=2, has_more=True, in_space=True)
    assert size(content) <= CARD_BUDGET
    text = json.dumps(content)  # what it leaves out, it counts: every guest is accounted for
    counted = ('"Guest 10: "', '"Other guests: "', '"Guests sent links: "')
    accounted = sum(text.count(fact) for fact in counted)
    assert accounted == MEETINGS_PER_PAGE


def test_a_page_lists_every_guest_and_device_it_has_room_for() -> None:
    busy = replace(UPCOMING, reached=tuple(ZOE for _ in range(10)),
                   devices=("Exam Room 1", "Cart 7", "Room 12"))
    text = json.dumps(page([replace(busy, meeting_id=f"m{n}") for n in range(MEETINGS_PER_PAGE)]))
    assert text.count('"Guest 10: "') == MEETINGS_PER_PAGE
    assert text.count("Room 12") == MEETINGS_PER_PAGE


def test_longer_lists_are_counted_not_dropped() -> None:
    many = replace(UPCOMING, devices=tuple(f"Room {n}" for n in range(1, 8)))
    assert "Room 1, Room 2, Room 3 and 4 more" in json.dumps(page([many]))


def test_text_as_typed_is_shown_literally_and_can_wrap() -> None:
    subject = "**Not bold** [no link](https://a.example) " + "x" * 50
    content = page([replace(UPCOMING, subject=subject)])
    runs = [run["text"] for element in content["body"][2]["items"]
            if element["type"] == "RichTextBlock" for run in element["inlines"]]
    shown = runs[0]
    assert shown.replace("\u200b", "") == subject  # a TextRun is never read as markdown
    assert max(len(word) for word in shown.replace("\u200b", " ").split()) <= 20
    too_long = replace(UPCOMING, subject="s" * (MAX_SUBJECT_LENGTH + 30))
    runs = json.dumps(page([too_long]))
    assert "s" * 20 + "\\u200b" in runs and "\\u2026" in runs


def test_the_change_and_cancel_cards_stand_on_their_own() -> None:
    change = change_time_card(UPCOMING, timezone_name=ZONE)
    cancel = cancel_card(UPCOMING)
    for content in (change, cancel):
        validate_card(content)
        assert "Patient follow-up" in json.dumps(content)
    assert ZONE in json.dumps(change)
    assert submits(change) == [{ACTION: ACTION_CHANGE_TIME, MEETING: "m7Qx2"}]
    assert submits(cancel) == [{ACTION: ACTION_CANCEL_MEETING, MEETING: "m7Qx2"}]
