"""Cards are valid Adaptive Cards 1.3 for Webex, with the ids and defaults the handlers rely on."""

import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.limits import DEFAULT_DURATION
from cards import (
    ADAPTIVE_CARD_CONTENT_TYPE,
    CatalogDevice,
    LinkEntry,
    attachment,
    help_card,
    links_card,
    meeting_form,
)
from cards import inputs as ids
from tests.support.card_schema import SCHEMA_PATH, validate_card

SUBJECTS = [
    "Patient follow-up",
    "Visite de contrôle — Ärztin Dr. Ørsted",
    "診察のフォローアップ",
    "🩺 Check-up 👩‍⚕️🎉",
    "x" * 1000,
    "**bold** _it_ [click me](https://evil.example) <b>html</b> ${var} {{card}}",
    'quotes " and \\ backslashes\nand a new line',
]

IC_BASE = "https://instant.webex.com/gen/v1"

FORM_IDS = {
    ids.SUBJECT,
    ids.HOSTS,
    ids.GUESTS,
    ids.EXTRA_DEVICES,
    ids.SHORT_LINKS,
    ids.VERTICAL,
    ids.HOST_LOGIN,
    ids.START_DATE,
    ids.START_TIME,
    ids.DURATION,
    ids.VALID_FOR,
}


def catalog(size: int) -> list[CatalogDevice]:
    """A catalog of `size` rooms with distinct SIP URIs."""
    return [CatalogDevice(f"Room {n}", f"room{n}@video.example.com") for n in range(size)]


def walk(node: Any) -> Iterator[dict]:
    """Every object in a card, however deeply nested."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def inputs_of(card: dict) -> dict[str, dict]:
    """The card's inputs by id."""
    return {n["id"]: n for n in walk(card) if str(n.get("type")).startswith("Input.") and "id" in n}


def of_type(card: dict, kind: str) -> list[dict]:
    """The card's objects of one type, in order."""
    return [n for n in walk(card) if n.get("type") == kind]


def texts(card: dict) -> list[str]:
    """All text shown by TextBlocks and TextRuns."""
    return [n["text"] for n in walk(card) if n.get("type") in ("TextBlock", "TextRun")]


def form(**overrides: Any) -> dict:
    """A meeting form with test defaults, overridable per test."""
    arguments = {"group_space": True, "timezone_name": "Europe/Paris", **overrides}
    return meeting_form(arguments.pop("catalog", catalog(3)), **arguments)


def link_entries(count: int, *, short: bool = True) -> list[LinkEntry]:
    """Links with realistic, long Instant Connect URLs."""
    cipher = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..x_Y-z" + "Ab1_-" * 150
    return [
        LinkEntry(
            label=f"{'Host' if n < 5 else 'Guest'} {n + 1}",
            url=f"{IC_BASE}/{'login' if n < 5 else 'talk'}?int=jose&v=1&data={cipher}{n}",
            short_url=f"https://ic.example.com/s/{n:04d}" if short else None,
        )
        for n in range(count)
    ]


# The validator itself: it must be able to fail.


def minimal(*body: dict, version: Any = "1.3") -> dict:
    """A card around the given body elements."""
    return {"type": "AdaptiveCard", "version": version, "body": list(body)}


def test_vendored_schema_is_the_official_draft06_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    assert schema["id"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert "Input.Toggle" in schema["definitions"]


def test_validator_accepts_a_minimal_card() -> None:
    validate_card(minimal({"type": "TextBlock", "text": "hello"}))


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (
            minimal({"type": "Input.Text", "label": "No id"}),
            "$.body[0]: 'id' is a required property",
        ),
        (minimal({"type": "Input.Toggle", "id": "t"}), "'title' is a required property"),
        (minimal({"type": "TextBlock", "text": 5}), "$.body[0].text: 5 is not of type 'string'"),
        (minimal({"type": "Input.Number", "id": "n", "value": "1"}), "'1' is not of type 'number'"),
        (minimal({"type": "TextBlock", "text": "x", "colour": "red"}), "$.body[0]"),
        (minimal({"type": "Carousel", "pages": []}), "'Carousel' is not a type allowed here"),
        (minimal({"type": "Action.OpenUrl", "url": "https://a"}), "'Action.OpenUrl' is not a type"),
        (minimal({"type": "FactSet", "facts": [{"title": "a"}]}), "'value' is a required property"),
        (minimal({"type": "Container", "items": [{"type": "Image"}]}), "$.body[0].items[0]"),
        (minimal({"type": "Media", "sources": []}), "Webex does not render 'Media'"),
        (minimal(version="1.2"), "Webex renders version '1.3', not '1.2'"),
        (minimal(version="1.5"), "not '1.5'"),
        (minimal(version=None), "not None"),
        ({"version": "1.3", "body": []}, "must be 'AdaptiveCard'"),
        (
            minimal(
                {"type": "Input.Text", "id": "a"}, {"type": "Input.Toggle", "id": "a", "title": "t"}
            ),
            "input id 'a' is used twice",
        ),
    ],
)
def test_validator_rejects_broken_cards_with_a_readable_message(card: dict, expected: str) -> None:
    with pytest.raises(AssertionError) as failure:
        validate_card(card)
    assert expected in str(failure.value)


def test_validator_lists_every_problem_at_once() -> None:
    card = minimal({"type": "Input.Text"}, {"type": "Media", "sources": []}, version="1.4")
    with pytest.raises(AssertionError) as failure:
        validate_card(card)
    message = str(failure.value)
    assert "'id' is a required property" in message
    assert "'Media'" in message
    assert "'1.4'" in message


def test_validator_ignores_type_keys_inside_submit_data() -> None:
    submit = {"type": "Action.Submit", "title": "Go", "data": {"type": "Media"}}
    validate_card({**minimal(), "actions": [submit]})


# The meeting form.


@pytest.mark.parametrize("size", [0, 1, 5, 12])
@pytest.mark.parametrize("group_space", [True, False])
def test_form_is_valid_and_has_exactly_the_shared_ids(size: int, group_space: bool) -> None:
    card = form(catalog=catalog(size), group_space=group_space)
    validate_card(card)
    expected = set(FORM_IDS)
    if size:
        expected.add(ids.DEVICES)
    if group_space:
        expected.add(ids.PRIVATE_HOST_LINKS)
    assert set(inputs_of(card)) == expected


def test_form_defaults() -> None:
    fields = inputs_of(form())
    assert fields[ids.SUBJECT].get("value") is None
    assert fields[ids.SUBJECT]["isRequired"] is True
    assert fields[ids.SUBJECT]["maxLength"] == ids.MAX_SUBJECT_LENGTH == 120
    assert fields[ids.SUBJECT]["placeholder"] == "Patient follow-up"
    for count in (ids.HOSTS, ids.GUESTS):
        assert (fields[count]["value"], fields[count]["min"], fields[count]["max"]) == (1, 0, 25)
        assert fields[count]["errorMessage"]
    assert fields[ids.VERTICAL]["value"] == "gen"
    assert fields[ids.VALID_FOR]["value"] == "2h"
    assert fields[ids.DURATION]["value"] == "30m"
    for toggle in (ids.SHORT_LINKS, ids.HOST_LOGIN, ids.PRIVATE_HOST_LINKS):
        assert fields[toggle]["type"] == "Input.Toggle"
        assert (fields[toggle]["value"], fields[toggle]["valueOn"], fields[toggle]["valueOff"]) == (
            "true",
            "true",
            "false",
        )
    for optional in (ids.START_DATE, ids.START_TIME, ids.EXTRA_DEVICES, ids.DEVICES):
        assert "value" not in fields[optional]
        assert not fields[optional].get("isRequired")
    assert fields[ids.EXTRA_DEVICES]["placeholder"] == "room@example.com"
    assert fields[ids.HOST_LOGIN]["title"] == "Hosts can sign in"
    assert fields[ids.PRIVATE_HOST_LINKS]["title"] == "Send host links to me privately"


def test_form_input_types() -> None:
    types = {name: field["type"] for name, field in inputs_of(form()).items()}
    assert types == {
        ids.SUBJECT: "Input.Text",
        ids.HOSTS: "Input.Number",
        ids.GUESTS: "Input.Number",
        ids.DEVICES: "Input.ChoiceSet",
        ids.EXTRA_DEVICES: "Input.Text",
        ids.SHORT_LINKS: "Input.Toggle",
        ids.VERTICAL: "Input.ChoiceSet",
        ids.HOST_LOGIN: "Input.Toggle",
        ids.START_DATE: "Input.Date",
        ids.START_TIME: "Input.Time",
        ids.DURATION: "Input.ChoiceSet",
        ids.VALID_FOR: "Input.ChoiceSet",
        ids.PRIVATE_HOST_LINKS: "Input.Toggle",
    }


def test_private_host_links_toggle_only_in_group_spaces() -> None:
    assert ids.PRIVATE_HOST_LINKS in inputs_of(form(group_space=True))
    assert ids.PRIVATE_HOST_LINKS not in inputs_of(form(group_space=False))


@pytest.mark.parametrize(
    ("size", "style"), [(1, "expanded"), (5, "expanded"), (6, "compact"), (12, "compact")]
)
def test_device_picker_lists_the_catalog_by_name_with_sip_uris(size: int, style: str) -> None:
    picker = inputs_of(form(catalog=catalog(size)))[ids.DEVICES]
    assert picker["isMultiSelect"] is True
    assert picker["style"] == style
    assert picker["choices"] == [{"title": d.name, "value": d.sip_uri} for d in catalog(size)]


def test_choice_sets_offer_the_shared_choices_in_order() -> None:
    fields = inputs_of(form())
    assert list(ids.VALID_FOR_CHOICES) == ["15m", "1h", "2h", "4h", "8h", "24h", "7d"]
    assert [c["value"] for c in fields[ids.VALID_FOR]["choices"]] == list(ids.VALID_FOR_CHOICES)
    assert [c["title"] for c in fields[ids.VALID_FOR]["choices"]] == list(
        ids.VALID_FOR_CHOICES.values()
    )
    assert fields[ids.VERTICAL]["choices"] == [
        {"title": "General", "value": "gen"},
        {"title": "Healthcare", "value": "hc"},
    ]
    assert fields[ids.VERTICAL]["style"] == fields[ids.VALID_FOR]["style"] == "compact"


def test_the_form_asks_how_long_the_meeting_lasts_apart_from_the_links_validity() -> None:
    """A meeting of 15 minutes to 2 hours, 30 minutes unless changed; the rule of its links said."""
    card = form()
    duration = inputs_of(card)[ids.DURATION]
    assert duration["label"] == "Duration"
    assert (duration["type"], duration["style"], duration["value"]) == (
        "Input.ChoiceSet", "compact", DEFAULT_DURATION)
    assert duration["choices"] == [
        {"title": "15 minutes", "value": "15m"}, {"title": "30 minutes", "value": "30m"},
        {"title": "45 minutes", "value": "45m"}, {"title": "1 hour", "value": "1h"},
        {"title": "1 hour 30", "value": "90m"}, {"title": "2 hours", "value": "2h"}]
    assert ("Links open 10 minutes before a later start and work until at least 30 minutes "
            "after the end.") in texts(card)


def test_form_names_the_timezone_of_the_start_time() -> None:
    card = form(timezone_name="America/New_York")
    assert any("America/New_York" in text for text in texts(card))


def test_form_submit_carries_the_create_action() -> None:
    card = form()
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Create meeting links",
            "data": {ids.ACTION: ids.ACTION_CREATE},
        }
    ]
    assert len(of_type(card, "Action.Submit")) == 1


def test_advanced_options_are_grouped_apart_from_the_essentials() -> None:
    card = form()
    top_level = {n.get("id") for n in card["body"]}
    assert {ids.SUBJECT, ids.SHORT_LINKS} <= top_level
    options = [n for n in card["body"] if n["type"] == "Container"]
    assert len(options) == 1
    assert {ids.VERTICAL, ids.HOST_LOGIN, ids.VALID_FOR, ids.START_DATE, ids.START_TIME,
            ids.DURATION} == set(inputs_of(options[0]))


def test_form_shows_each_input_at_its_default_and_takes_nothing_to_prefill() -> None:
    """Nothing prefills the form: a corrected request is typed again, so no caller keeps values."""
    assert "values" not in inspect.signature(meeting_form).parameters
    card = form(catalog=catalog(5), group_space=True)
    shown = {name: field.get("value") for name, field in inputs_of(card).items()}
    assert shown == {
        ids.SUBJECT: None, ids.HOSTS: 1, ids.GUESTS: 1, ids.DEVICES: None,
        ids.EXTRA_DEVICES: None, ids.SHORT_LINKS: "true", ids.PRIVATE_HOST_LINKS: "true",
        ids.VERTICAL: "gen", ids.HOST_LOGIN: "true", ids.VALID_FOR: "2h",
        ids.START_DATE: None, ids.START_TIME: None, ids.DURATION: "30m",
    }


# The links card.


@pytest.mark.parametrize("subject", SUBJECTS)
def test_links_card_shows_any_subject_literally(subject: str) -> None:
    card = links_card(subject=subject, window="now until 11:00", devices=[], links=link_entries(2))
    validate_card(card)
    heading = card["body"][0]
    assert heading["type"] == "RichTextBlock"
    assert heading["inlines"][0]["text"] == subject


@settings(max_examples=50, deadline=None)
@given(st.text(), st.text(), st.lists(st.text(), max_size=3))
def test_links_card_is_valid_whatever_the_text(
    subject: str, window: str, devices: list[str]
) -> None:
    validate_card(
        links_card(subject=subject, window=window, devices=devices, links=link_entries(1))
    )


@pytest.mark.parametrize("short", [True, False])
def test_twenty_five_links_make_a_valid_card_with_one_open_button_each(short: bool) -> None:
    entries = link_entries(25, short=short)
    card = links_card(subject="Ward round", window="2 hours", devices=["Room 1"], links=entries)
    validate_card(card)
    buttons = of_type(card, "Action.OpenUrl")
    assert [b["url"] for b in buttons] == [e.short_url if short else e.url for e in entries]
    assert {b["title"] for b in buttons} == {"Open"}
    assert [len(action_set["actions"]) for action_set in of_type(card, "ActionSet")] == [1] * 25
    assert "actions" not in card


def test_links_card_mixes_short_and_long_urls_per_link() -> None:
    entries = [
        LinkEntry(
            "Host 1", "https://instant.webex.com/gen/v1/login?data=h", "https://ic.example.com/h"
        ),
        LinkEntry("Guest 1", "https://instant.webex.com/gen/v1/talk?data=g", None),
    ]
    card = links_card(subject="Mixed", window="1 hour", devices=[], links=entries)
    validate_card(card)
    assert [b["url"] for b in of_type(card, "Action.OpenUrl")] == [
        "https://ic.example.com/h",
        "https://instant.webex.com/gen/v1/talk?data=g",
    ]


@pytest.mark.parametrize("short", [True, False])
def test_links_card_shows_every_url_literally_in_a_field_to_copy(short: bool) -> None:
    """A 1,400-character URL does not wrap in a RichTextBlock and a TextBlock reads it as markdown;
    a one-line field shows it literally at the card's width (tests/test_card_rendering.py)."""
    entries = link_entries(3, short=short)
    card = links_card(subject="Copy", window="1 hour", devices=[], links=entries)
    validate_card(card)
    fields = of_type(card, "Input.Text")
    expected = [url for e in entries for url in ((e.short_url, e.url) if short else (e.url,))]
    assert [f["value"] for f in fields] == expected
    assert {f["style"] for f in fields} == {"url"}
    assert not any(f.get("isMultiline") for f in fields)
    labels = [e.label for e in entries]
    if short:
        labels = [label for e in entries for label in (e.label, f"{e.label}: full link")]
    assert [f["label"] for f in fields] == labels
    assert not [t for t in texts(card) if "://" in t]  # no URL in text that could be reformatted


def test_links_card_fields_are_never_submitted() -> None:
    card = links_card(subject="S", window="w", devices=[], links=link_entries(25))
    assert not of_type(card, "Action.Submit")
    assert len(inputs_of(card)) == 50  # unique ids: validate_card fails on a twin


def test_links_card_facts_show_the_window_and_the_devices_dialled() -> None:
    card = links_card(
        subject="S", window="Today 10:00 to 12:00", devices=["Room 1", "x@y.z"], links=[]
    )
    validate_card(card)
    assert of_type(card, "FactSet")[0]["facts"] == [
        {"title": "Valid", "value": "Today 10:00 to 12:00"},
        {"title": "Devices", "value": "Room 1, x@y.z"},
    ]
    without = links_card(subject="S", window="Today", devices=[], links=[])
    assert [f["title"] for f in of_type(without, "FactSet")[0]["facts"]] == ["Valid"]


def test_links_card_shows_notes_literally_under_the_window() -> None:
    note = "02:30 does not exist on Sun 29 Mar in America/Port_of_Spain: *not* markdown."
    card = links_card(subject="S", window="w", devices=[], links=link_entries(1), notes=[note])
    validate_card(card)
    assert card["body"][1]["type"] == "FactSet"
    assert card["body"][2]["type"] == "RichTextBlock"
    assert card["body"][2]["inlines"][0]["text"] == note


def test_links_card_numbers_its_parts() -> None:
    second = links_card(
        subject="Clinic", window="w", devices=[], links=link_entries(1), part=2, parts=3
    )
    only = links_card(subject="Clinic", window="w", devices=[], links=link_entries(1))
    assert second["body"][0]["inlines"][0]["text"] == "Clinic (part 2 of 3)"
    assert only["body"][0]["inlines"][0]["text"] == "Clinic"


# The help card and the attachment wrapper.


def test_help_card_lists_the_commands_and_offers_the_form() -> None:
    commands = [("meet <subject>", "Links for a meeting right away"), ("help", "This card")]
    card = help_card(bot_name="Instant Connect", commands=commands)
    validate_card(card)
    assert of_type(card, "FactSet")[0]["facts"] == [{"title": c, "value": d} for c, d in commands]
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Open the meeting form",
            "data": {ids.ACTION: ids.ACTION_SHOW_FORM},
        }
    ]


def test_help_card_without_commands_is_still_valid() -> None:
    validate_card(help_card(bot_name="Bot **name**", commands=[]))


def test_attachment_wraps_card_content_for_webex() -> None:
    content = help_card(bot_name="Bot", commands=[])
    assert attachment(content) == {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": content}
    assert ADAPTIVE_CARD_CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"


@pytest.mark.parametrize(
    "card",
    [
        form(),
        links_card(subject="s", window="w", devices=[], links=[]),
        help_card(bot_name="b", commands=[]),
    ],
)
def test_every_card_declares_version_1_3_and_the_schema(card: dict) -> None:
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.3"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
