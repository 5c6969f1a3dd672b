"""Input ids, choices and limits shared by the cards and the handlers that read submissions."""

from dataclasses import dataclass
from types import MappingProxyType

# Action.Submit data key and its values: tells the handler which button was pressed.
ACTION = "action"
ACTION_CREATE = "create_meeting"
ACTION_SHOW_FORM = "show_form"
# The meetings card's buttons: a page of the list, and what each meeting's buttons ask for.
ACTION_LIST_MEETINGS = "list_meetings"
ACTION_SEND_HOST_LINKS = "send_host_links"  # to the person who pressed, privately
ACTION_RESEND_GUEST_LINKS = "resend_guest_links"
ACTION_CHANGE_TIME = "change_time"
ACTION_CANCEL_MEETING = "cancel_meeting"
# Action.Submit data keys beside ACTION: the meeting a button acts on, and the page to show
# (a number as text, 1 the newest).
MEETING = "meeting"
PAGE = "page"

# Input ids of the meeting form; Webex returns every value as a string.
SUBJECT = "subject"
HOSTS = "hosts"
GUESTS = "guests"
DEVICES = "devices"  # multi-select of catalog SIP URIs, returned comma-separated
EXTRA_DEVICES = "extraDevices"  # free text: SIP addresses separated by commas, spaces or new lines
SHORT_LINKS = "shortLinks"
VERTICAL = "vertical"
HOST_LOGIN = "hostLogin"
START_DATE = "startDate"  # YYYY-MM-DD, may be empty
START_TIME = "startTime"  # HH:MM, may be empty
DURATION = "duration"  # how long the meeting lasts: 30m, 1h (not how long its links work)
VALID_FOR = "validFor"
PRIVATE_HOST_LINKS = "privateHostLinks"  # only on forms posted in group spaces
GUEST_CONTACTS = "guestContacts"  # email addresses and mobile numbers, one guest link each
GUEST_NOTE = "guestNote"  # a few words for the guests, in their email
GUEST_LANGUAGE = "guestLanguage"  # what guests read: one of GUEST_LANGUAGES
REMIND_BEFORE = "remindBefore"  # when guests are reminded: 15m, 1h, 1d before the start; none
# Inputs of the change-time card; in the meetings card each meeting has its own, named by
# `meeting_input`, because a card's input ids must be unique.
NEW_START_DATE = "newStartDate"  # YYYY-MM-DD
NEW_START_TIME = "newStartTime"  # HH:MM

# What each input is called on its card, and so in every reply that asks to fix one.
LABELS = MappingProxyType(
    {
        SUBJECT: "Subject",
        HOSTS: "Hosts",
        GUESTS: "Guests",
        DEVICES: "Video devices to dial in",
        EXTRA_DEVICES: "Other video devices (SIP addresses)",
        SHORT_LINKS: "Short links",
        VERTICAL: "Meeting type",
        HOST_LOGIN: "Hosts can sign in",
        START_DATE: "Start date",
        START_TIME: "Start time",
        DURATION: "Duration",
        VALID_FOR: "Links valid for",
        PRIVATE_HOST_LINKS: "Send host links to me privately",
        GUEST_CONTACTS: "Send guest links to",
        GUEST_NOTE: "Note for the guests",
        GUEST_LANGUAGE: "Guests' language",
        REMIND_BEFORE: "Remind the guests",
        NEW_START_DATE: "New date",
        NEW_START_TIME: "New start time",
    }
)

# What an Input.Toggle submits when on and off.
TOGGLE_ON = "true"
TOGGLE_OFF = "false"

VERTICAL_CHOICES = MappingProxyType({"gen": "General", "hc": "Healthcare"})
DEFAULT_VERTICAL = "gen"

# The languages guests can be written to in, each by its own name (a catalog each in
# bot/locale, but English, which the messages are written in).
GUEST_LANGUAGES = MappingProxyType(
    {
        "en": "English",
        "es": "Español",
        "fr": "Français",
        "de": "Deutsch",
        "pt": "Português",
        "it": "Italiano",
        "nl": "Nederlands",
    }
)
DEFAULT_GUEST_LANGUAGE = "en"

# When guests are reminded of their meeting, before its start; "none" sends no reminder.
NO_REMINDER = "none"
REMIND_CHOICES = MappingProxyType(
    {
        "15m": "15 minutes before",
        "1h": "1 hour before",
        "1d": "1 day before",
        NO_REMINDER: "No reminder",
    }
)
DEFAULT_REMIND_BEFORE = "15m"

VALID_FOR_CHOICES = MappingProxyType(
    {
        "15m": "15 minutes",
        "1h": "1 hour",
        "2h": "2 hours",
        "4h": "4 hours",
        "8h": "8 hours",
        "24h": "24 hours",
        "7d": "7 days",
    }
)
DURATION_CHOICES = MappingProxyType(
    {
        "15m": "15 minutes",
        "30m": "30 minutes",
        "45m": "45 minutes",
        "1h": "1 hour",
        "90m": "1 hour 30",
        "2h": "2 hours",
    }
)
MAX_SUBJECT_LENGTH = 120
MAX_NOTE_LENGTH = 300
# Webex documents no size limit for a card; stay well inside any plausible one (JSON bytes).
CARD_BUDGET = 24_000
MEETINGS_PER_PAGE = 4  # a fifth with the longest texts would not fit, even listed briefly


def meeting_input(input_id: str, meeting_id: str) -> str:
    """The id of one meeting's `input_id` in the meetings card, where each meeting has its own."""
    return f"{input_id}.{meeting_id}"


@dataclass(frozen=True)
class CatalogDevice:
    """A video device people can pick in the form, so they need not type its SIP URI."""

    name: str
    sip_uri: str
