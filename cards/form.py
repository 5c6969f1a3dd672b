"""The meeting form: what people fill in to get Instant Connect links."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.limits import (
    AFTER_END,
    DEFAULT_DURATION,
    DEFAULT_VALID_FOR,
    JOIN_EARLY,
    MAX_CONTACTS,
    MAX_LINKS,
)
from cards.elements import Element, card, heading, text_block
from cards.inputs import (
    ACTION,
    ACTION_CREATE,
    DEFAULT_GUEST_LANGUAGE,
    DEFAULT_REMIND_BEFORE,
    DEFAULT_VERTICAL,
    DEVICES,
    DURATION,
    DURATION_CHOICES,
    EXTRA_DEVICES,
    GUEST_CONTACTS,
    GUEST_LANGUAGE,
    GUEST_LANGUAGES,
    GUEST_NOTE,
    GUESTS,
    HOST_LOGIN,
    HOSTS,
    LABELS,
    MAX_NOTE_LENGTH,
    MAX_SUBJECT_LENGTH,
    PRIVATE_HOST_LINKS,
    REMIND_BEFORE,
    REMIND_CHOICES,
    SHORT_LINKS,
    START_DATE,
    START_TIME,
    SUBJECT,
    TOGGLE_OFF,
    TOGGLE_ON,
    VALID_FOR,
    VALID_FOR_CHOICES,
    VERTICAL,
    VERTICAL_CHOICES,
    CatalogDevice,
)


@dataclass(frozen=True)
class ContactWay:
    """How the form asks for one channel's contacts: what they are, one example, and a hint."""

    kinds: str  # "email addresses"
    example: str  # "zoe@example.org"
    hint: str = ""  # what a person should know when using it


EXPANDED_DEVICE_LIST_MAX = 5  # longer catalogs get a drop-down so the form stays short


def meeting_form(
    catalog: Sequence[CatalogDevice],
    *,
    group_space: bool,
    timezone_name: str,
    channels: Sequence[ContactWay] = (),
    valid_for: str = DEFAULT_VALID_FOR,
    guest_language: str = DEFAULT_GUEST_LANGUAGE,
    remind_before: str = DEFAULT_REMIND_BEFORE,
) -> Element:
    """Build the form, every input at its default.

    `channels` are the ways the bot can send guests their links, in order; with none, the form
    does not offer to. `valid_for` is the deployment's DEFAULT_VALID_FOR, preselected (and
    offered as typed when it is none of the usual choices, such as 3h); the meeting's duration
    starts at DEFAULT_DURATION. `guest_language` (GUEST_LANGUAGE) is preselected for what the
    guests read, and `remind_before` (REMIND_BEFORE) for when they are reminded (offered as
    typed when it is none of the usual choices).
    """
    body = [
        heading("New Instant Connect meeting"),
        {
            "type": "Input.Text",
            "id": SUBJECT,
            "label": LABELS[SUBJECT],
            "placeholder": "Patient follow-up",
            "maxLength": MAX_SUBJECT_LENGTH,
            "isRequired": True,
            "errorMessage": f"Enter a subject of up to {MAX_SUBJECT_LENGTH} characters.",
        },
        _columns(
            _count_input(HOSTS, LABELS[HOSTS]),
            _count_input(GUESTS, LABELS[GUESTS]),
        ),
        text_block(f"Up to {MAX_LINKS} links in all.", isSubtle=True, size="small", spacing="none"),
    ]
    if channels:
        body += _guest_contacts(channels, guest_language, remind_before)
    if catalog:
        body.append(_device_picker(catalog))
    body += [
        {
            "type": "Input.Text",
            "id": EXTRA_DEVICES,
            "label": LABELS[EXTRA_DEVICES],
            "placeholder": "room@example.com",
            "isMultiline": True,
        },
        _toggle(SHORT_LINKS, LABELS[SHORT_LINKS]),
    ]
    if group_space:
        body.append(_toggle(PRIVATE_HOST_LINKS, LABELS[PRIVATE_HOST_LINKS]))
    body.append(_more_options(timezone_name, valid_for))
    submit = {
        "type": "Action.Submit",
        "title": "Create meeting links",
        "data": {ACTION: ACTION_CREATE},
    }
    return card(body, [submit])


def _guest_contacts(channels: Sequence[ContactWay], language: str,
                    remind_before: str) -> list[Element]:
    """Where guest links go outside Webex, a note for the guests, their language and when they
    are reminded."""
    kinds = " or ".join(way.kinds for way in channels)
    explained = " ".join([
        f"Up to {MAX_CONTACTS} {kinds}, one per line or separated by commas. Each contact gets "
        "its own guest link (guest 1 to the first); with more contacts than guests, guests are "
        "added to match.", *(way.hint for way in channels if way.hint)])
    examples = [way.example for way in channels]
    return [
        {
            "type": "Input.Text",
            "id": GUEST_CONTACTS,
            "label": LABELS[GUEST_CONTACTS],
            "placeholder": ", ".join(examples),
            "isMultiline": True,
        },
        text_block(explained, isSubtle=True, size="small", spacing="none"),
        {
            "type": "Input.Text",
            "id": GUEST_NOTE,
            "label": LABELS[GUEST_NOTE],
            "placeholder": "Please join five minutes early.",
            "isMultiline": True,
            "maxLength": MAX_NOTE_LENGTH,
        },
        _choice_set(GUEST_LANGUAGE, LABELS[GUEST_LANGUAGE], GUEST_LANGUAGES, language),
        _choice_set(REMIND_BEFORE, LABELS[REMIND_BEFORE],
                    _with_default(REMIND_CHOICES, remind_before), remind_before),
    ]


def _more_options(timezone_name: str, valid_for: str) -> Element:
    """Group the options most people leave alone under one heading, below the essentials:
    when the meeting is and how long it lasts first, then how its links behave."""
    return {
        "type": "Container",
        "separator": True,
        "spacing": "large",
        "items": [
            text_block("More options", weight="bolder"),
            text_block(f"Start ({timezone_name} time, leave empty to start now)"),
            _columns(
                {"type": "Input.Date", "id": START_DATE, "label": LABELS[START_DATE]},
                {"type": "Input.Time", "id": START_TIME, "label": LABELS[START_TIME]},
            ),
            _columns(
                _choice_set(DURATION, LABELS[DURATION], DURATION_CHOICES, DEFAULT_DURATION),
                _choice_set(VALID_FOR, LABELS[VALID_FOR],
                            _with_default(VALID_FOR_CHOICES, valid_for), valid_for),
            ),
            text_block(f"Links open {_minutes(JOIN_EARLY)} minutes before a later start and "
                       f"work until at least {_minutes(AFTER_END)} minutes after the end.",
                       isSubtle=True, size="small", spacing="none"),
            _choice_set(VERTICAL, LABELS[VERTICAL], VERTICAL_CHOICES, DEFAULT_VERTICAL),
            _toggle(HOST_LOGIN, LABELS[HOST_LOGIN]),
        ],
    }


def _minutes(span: timedelta) -> int:
    return round(span.total_seconds() / 60)


def _count_input(input_id: str, label: str) -> Element:
    """Ask for a number of hosts or guests; the range mirrors what Instant Connect accepts."""
    return {
        "type": "Input.Number",
        "id": input_id,
        "label": label,
        "min": 0,
        "max": MAX_LINKS,
        "value": 1,
        "errorMessage": f"Enter a number from 0 to {MAX_LINKS}.",
    }


def _device_picker(catalog: Sequence[CatalogDevice]) -> Element:
    """Offer the known devices by name; the submitted values are their SIP URIs."""
    return {
        "type": "Input.ChoiceSet",
        "id": DEVICES,
        "label": LABELS[DEVICES],
        "isMultiSelect": True,
        "style": "expanded" if len(catalog) <= EXPANDED_DEVICE_LIST_MAX else "compact",
        "choices": [{"title": d.name, "value": d.sip_uri} for d in catalog],
    }


def _with_default(choices: Mapping[str, str], default: str) -> Mapping[str, str]:
    """The usual choices, and first the deployment's own default when it is none of them."""
    return choices if default in choices else {default: default, **choices}


def _choice_set(
    input_id: str,
    label: str,
    choices: Mapping[str, str],
    default: str,
) -> Element:
    """A drop-down, its default (one of its choices) selected."""
    return {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "style": "compact",
        "value": default,
        "choices": [{"title": title, "value": key} for key, title in choices.items()],
    }


def _toggle(input_id: str, title: str) -> Element:
    """An on-by-default switch that submits "true" or "false", as the handlers expect."""
    return {
        "type": "Input.Toggle",
        "id": input_id,
        "title": title,
        "valueOn": TOGGLE_ON,
        "valueOff": TOGGLE_OFF,
        "value": TOGGLE_ON,
        "wrap": True,
    }


def _columns(*items: Element) -> Element:
    """Put short inputs side by side so the form is not a wall of fields."""
    return {
        "type": "ColumnSet",
        "columns": [{"type": "Column", "width": "stretch", "items": [item]} for item in items],
    }
