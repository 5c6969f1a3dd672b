"""Every sentence the bot says in a space, so the conversation decides and this module phrases.

What a person typed is echoed shortened, literal (markdown escaped) and valid UTF-8; a list of
problems stays within the size Webex accepts for one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.conversation.contacts import Contact
from bot.conversation.guest_messages import MessageKind
from bot.conversation.link_messages import escape_markdown
from bot.errors import FieldError, Unconfirmed, UpstreamError
from bot.upstream.instant_connect import Link
from cards import inputs as ids
from cards.inputs import CatalogDevice
from cards.meetings import MeetingSummary

PROBLEMS_BUDGET = 4000  # bytes of a "please fix" reply; Webex refuses messages over 7439

WELCOME = ("Hello! I make Webex Instant Connect meeting links for people outside your "
           "organisation.")
HELP = "Here is what I can do:"
NOT_UNDERSTOOD = "I did not catch that. Here is what I can do:"
FORM = ("Fill in the meeting form to get Instant Connect links. (Your Webex app cannot show "
        "cards? Use: meet <subject>)")
FORM_GONE = "This form is no longer active here. Mention me with **new** for a fresh one."
ALREADY_CREATED = ("These meeting links were already created from this form. Mention me with "
                   "**new** for another meeting.")
NOT_ALLOWED = ("Sorry, I can only make meetings for people my administrator has allowed. "
               "Please ask them if you need access.")
FIX_OPTIONS = "Please fix the options and try again:"
FIX_FORM = "Please fix these and submit the form again:"
FIX_COMMAND = "Please fix these and send the command again:"
NOT_CREATED = "The meeting could not be created:"


def help_text(intro: str, commands: Sequence[tuple[str, str]]) -> str:
    """The commands as (usage, what it does) under ``intro``: the markdown beside the help card."""
    return "\n".join([intro, *(f"- **{usage}**: {what}" for usage, what in commands)])


def devices(catalog: Sequence[CatalogDevice]) -> str:
    """The devices the bot can dial in, or how to dial one in when none are configured."""
    if not catalog:
        return ("No devices are configured. You can still dial any device in with "
                "device=room@example.com, or in the form's "
                f"\"{ids.LABELS[ids.EXTRA_DEVICES]}\".")
    lines = ["Devices I can dial in (use device=<name> with meet, or pick them in the form):"]
    lines += [f"- **{escape_markdown(device.name)}**: {device.sip_uri}" for device in catalog]
    return "\n".join(lines)


def rate_limited(limit: int, window: timedelta) -> str:
    """The person made ``limit`` meetings within ``window`` already."""
    minutes = round(window.total_seconds() / 60)
    return (f"You have created {limit} meetings in the last {minutes} minutes, which is the "
            "limit. Please try again later.")


def ready(subject: str, host_name: str) -> str:
    """In the space, when the host links went to the host privately."""
    note = f"Host links were sent privately to {host_name or 'you'}."
    return f"Meeting **{escape_markdown(subject)}** is ready. {note}"


def upstream_failure(error: UpstreamError) -> str:
    """A failure of Webex or the broker, with its reference."""
    return f"Sorry, I could not finish that. {error.describe()}"


def problems(errors: Sequence[FieldError], intro: str) -> str:
    """The problems as one message: a forged submit can have thousands, Webex takes 7439 bytes."""
    lines, size = [intro], len(intro.encode("utf-8"))
    for shown, error in enumerate(errors):
        line = f"- **{_quoted(error.field, 80)}**: {_quoted(error.message, 300)}"
        size += 1 + len(line.encode("utf-8"))
        if size > PROBLEMS_BUDGET:
            lines.append(f"- and {len(errors) - shown} more problems like these.")
            break
        lines.append(line)
    return "\n".join(lines)


def _quoted(text: str, limit: int) -> str:
    """Echo what a person typed: shortened, literal, and without lone surrogates (not UTF-8)."""
    return escape_markdown(text[:limit].encode("utf-8", "replace").decode("utf-8"))


_SENT = {
    MessageKind.INVITATION: "{label} link sent to {to} ({how})",
    MessageKind.UPDATE: "{label}'s new time and link sent to {to} ({how})",
    MessageKind.CANCELLATION: "{label} told of the cancellation at {to}",
    MessageKind.REMINDER: "{label} reminded at {to}",
}
_REPORT = {
    MessageKind.INVITATION: "Guest links for {subject}",
    MessageKind.UPDATE: "Guests told of the new time of {subject}",
    MessageKind.CANCELLATION: "Guests told of the cancellation of {subject}",
    MessageKind.REMINDER: "Guests reminded of {subject}",
}


def guest_sent(
    contact: Contact, link: Link, how: str, *, privately: bool,
    kind: MessageKind = MessageKind.INVITATION,
) -> str:
    """One contact reached (``how``: its channel, as the report names it): whole in a 1:1
    space, masked in a group space."""
    return _SENT[kind].format(label=link.label, to=contact.shown(privately=privately), how=how)


def guest_unconfirmed(
    contact: Contact, link: Link, how: str, error: UpstreamError, *, privately: bool
) -> str:
    """One contact perhaps reached: handed over, but never confirmed. Sending it by hand could
    make it arrive twice, so say what is known."""
    shown = contact.shown(privately=privately)
    return f"{link.label} link to {shown} ({how}) may have been delivered: {error.describe()}"


def guest_not_sent(contact: Contact, error: UpstreamError, *, privately: bool) -> str:
    """One contact not reached, and why, with the reference."""
    shown = contact.shown(privately=privately)
    return f"Could not send a guest link to {shown}: {error.describe()}"


# What a guest's message is, in the sentences about one that is late.
_LATE = {
    MessageKind.INVITATION: "{label} link to {to} ({how})",
    MessageKind.UPDATE: "{label}'s new time and link to {to} ({how})",
    MessageKind.CANCELLATION: "{label}'s cancellation notice to {to} ({how})",
}
LATE_FOR = "an hour"  # how long a late message is tried again (late_deliveries.GAPS)


def guest_late(
    contact: Contact, link: Link, how: str, error: UpstreamError, *, privately: bool,
    kind: MessageKind = MessageKind.INVITATION,
) -> str:
    """One contact not reached yet, for a reason that passes: said once, in the report."""
    what = _LATE[kind].format(label=link.label, to=contact.shown(privately=privately), how=how)
    if isinstance(error, Unconfirmed):
        cause = f"{error.service} did not say whether it went out, so I will ask it first"
    else:
        cause = f"I could not get through to {error.service}{_reason(error)}"
    return f"{what} is late: {cause}. I will keep trying for {LATE_FOR} and say how it ends."


def guest_never_reached(contact: Contact, link: Link, *, privately: bool) -> str:
    """A cancelled meeting's guest whose link never went out: there is nothing to call off."""
    return (f"{link.label} at {contact.shown(privately=privately)} never received the link, so "
            "is not told of the cancellation")


def guest_late_ended(
    subject: str, contact: Contact, link: Link, how: str, error: UpstreamError | None, *,
    gave_up: bool, privately: bool, kind: MessageKind = MessageKind.INVITATION,
) -> str:
    """Once, in the thread of the links message: how a late message ended. ``gave_up``: it
    failed for a passing reason until the tries ran out."""
    what = _LATE[kind].format(label=link.label, to=contact.shown(privately=privately), how=how)
    about = f"{escape_markdown(what)} for **{escape_markdown(subject)}**"
    if error is None:
        return f"The late {about} went out."
    if isinstance(error, Unconfirmed):
        return f"The late {about} may have been delivered: {escape_markdown(error.describe())}"
    if gave_up:
        return (f"I gave up on the late {about} after {LATE_FOR}: I could not get through to "
                f"{error.service}{escape_markdown(_reason(error))}. Reach the guest another "
                "way, or send the links again from **meetings** later.")
    return f"The late {about} could not be sent: {escape_markdown(error.describe())}"


def guest_late_too_late(
    subject: str, contact: Contact, link: Link, how: str, *, privately: bool,
    kind: MessageKind = MessageKind.INVITATION,
) -> str:
    """Once, in the thread of the links message: a late message no longer tried, the meeting
    over."""
    what = _LATE[kind].format(label=link.label, to=contact.shown(privately=privately), how=how)
    return (f"I stopped trying the late {escape_markdown(what)} for "
            f"**{escape_markdown(subject)}**: the meeting is over.")


def _reason(error: UpstreamError) -> str:
    """What the service said, in brackets, without the advice a person acting now would get."""
    said = " ".join(part for part in (error.detail, f"HTTP {error.status}" if error.status
                                      else "") if part)
    return f" ({said})" if said else ""


def guest_report(
    subject: str, lines: Sequence[str], *, kind: MessageKind = MessageKind.INVITATION,
    notes: Sequence[str] = (),
) -> str:
    """What happened to each contact of one meeting, and what "sent" means where it matters."""
    title = _REPORT[kind].format(subject=escape_markdown(subject))
    return "\n".join([f"**{title}**",
                      *(f"- {escape_markdown(line)}" for line in lines), *notes])


def guest_text_failed(subject: str, guest: int, shown: str, error: str) -> str:
    """Told once, in the thread of the links message, when the carrier could not deliver a
    guest's text message (``error``: Twilio's code and what it means, or empty)."""
    why = f" ({error})" if error else ""
    return (f"The text message to guest {guest + 1} of **{escape_markdown(subject)}** at "
            f"{escape_markdown(shown)} was not delivered{why}. Check the number with them or "
            "reach them another way; **meetings** can send the guests their links again.")


# The meetings the bot remembers

NO_MEETINGS = ("You have no meetings from the last 7 days or to come. Say **new** or "
               "**meet <subject>** to make one.")
NO_MEETINGS_HERE = ("No meetings made in this space in the last 7 days or to come. Mention me "
                    "with **new** to make one.")
MEETING_GONE = ("I no longer have this meeting: it ended too long ago, or was never made. "
                "Say **meetings** for a fresh list.")
NOT_YOURS = ("Sorry, only the person who made this meeting, or the members of the space it "
             "was made in, can do that.")
OVER = "This meeting is over or cancelled: there is nothing left to change."
NO_LINKS_KEPT = ("I no longer keep this meeting's links: they are deleted once the meeting "
                 "and its links are over.")
NO_GUESTS_KEPT = "This meeting has no guests' email addresses or numbers to send links to."
REPLACED_BELOW = ("These links were replaced: the meeting has a new time. The new links follow "
                  "in the space.")
FIX_NEW_TIME = "Please fix the new time and press the button again:"


def host_links_sent(subject: str, name: str) -> str:
    """In the space, when someone asked for a meeting's host links."""
    return f"Host links for **{escape_markdown(subject)}** were sent privately to {name or 'you'}."


def cancelled(subject: str, links_window: str) -> str:
    """In the space, once a meeting is cancelled: what stays true of its links."""
    return (f"Meeting **{escape_markdown(subject)}** is cancelled and its guests were told. "
            "Instant Connect cannot revoke links already made, so they stay valid until they "
            f"expire, but nobody will be waiting there. They were valid {links_window}.")


def moved(subject: str, host_name: str) -> str:
    """In the space, when a meeting's time changed and its new host links went privately."""
    return (f"Meeting **{escape_markdown(subject)}** has a new time and new links. New host "
            f"links were sent privately to {host_name or 'you'}.")


STARTS_NOW_HEADING = "Your meeting starts now"  # above the host links, at the start


def starts_now(subject: str) -> str:
    """To the maker at the start, of a meeting with no host links kept."""
    return f"Your meeting **{escape_markdown(subject)}** starts now."


def appointment(window: str) -> str:
    """Under the links' validity: the meeting itself."""
    return f"The meeting is {window}."


def meetings_text(meetings: Sequence[MeetingSummary]) -> str:
    """The meetings card's fallback, for an app that shows no cards."""
    lines = ["**Meetings** (open this in a Webex app that shows cards to act on them):"]
    lines += [f"- **{escape_markdown(m.subject)}**: {m.when}, {m.status.value}"
              f"{', moved' if m.moved else ''}" for m in meetings]
    return "\n".join(lines)
