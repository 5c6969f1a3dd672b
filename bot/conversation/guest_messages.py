"""What a guest receives outside Webex about their meeting: an invitation, an update when the
meeting moves, a cancellation, each as an email with a calendar invite or a text message; and
a reminder shortly before it starts, the same link again, as an email without an invite
(nothing changes in the calendar) or a text message.

Each says who acts (the person and, when ``ORG_NAME`` is set, the organisation): a message
from an unknown sender with a link reads like phishing. The email is plain text and HTML (the
QR code inline, and attached; the short link to click, the long one beside it), plus the invite
twice: as a ``text/calendar`` alternative that mail clients act on, and as an ``.ics``
attachment for those that do not. The invite is iTIP (RFC 5546) over email (iMIP, RFC 6047):

- Its UID belongs to the meeting and the guest (the bot's meeting id and the guest's number),
  never to the links, so an update or a cancellation finds the event the invitation made.
- An update is a ``REQUEST`` with a higher SEQUENCE; a cancellation a ``CANCEL`` with a higher
  SEQUENCE and ``STATUS:CANCELLED``; the method is said in the calendar and in the MIME type,
  which clients (Outlook, Gmail) read, and must agree (RFC 6047).
- DTSTART and DTEND are the appointment, never the links' validity (which covers it with a
  margin): a link valid for a week is not a week-long event.
- The ORGANIZER, which both methods require, is the person who made the meeting at their email
  address; a person without one is named (CN) at the mail sender's address, the From of the
  email, so the invite still is a meeting a client can update and cancel. It must be the same
  in every message of a meeting: clients ignore an update or a cancellation from another one.
- The guest is the ATTENDEE, asked to answer an invitation or an update (RSVP,
  PARTSTAT=NEEDS-ACTION); a cancellation asks nothing.

A cancellation carries no link, no button and no QR code: nobody waits there any more.

Everything a guest reads is in the meeting's guest language (``GUEST_LANGUAGES``): the fixed
words from the gettext catalogs in ``bot/locale`` (compiled, shipped with the package), the
appointment by CLDR's patterns for that language (:func:`describe_appointment`). The email
says its language (``Content-Language``, the page's ``lang``, the invite's ``LANGUAGE``). The
text message's fixed words are GSM-7 in every language, and so is its date (a letter such as
the "á" of "sáb" loses its accent there): a subject and names in GSM-7 keep the whole text
GSM-7, two segments with the short link.
"""

from __future__ import annotations

import gettext
import html
import io
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from enum import Enum
from functools import cache
from importlib.resources import files

import icalendar
import segno

from bot.conversation.timewindow import describe_appointment
from bot.upstream.instant_connect import Link
from cards.inputs import DEFAULT_GUEST_LANGUAGE, GUEST_LANGUAGES

QR_FILENAME = "join-qr.png"
INVITE_FILENAME = "invite.ics"
PRODUCT_ID = "-//Instant Connect bot//EN"
CATALOG_DOMAIN = "guests"  # bot/locale/<language>/LC_MESSAGES/guests.mo


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is written (``pybabel extract`` looks for this
    name); it is translated where it is used."""
    return message


class MessageKind(Enum):
    """What a message tells a guest about their meeting."""

    INVITATION = "invitation"
    UPDATE = "update"  # the meeting moved: a new time and a new link
    CANCELLATION = "cancellation"
    REMINDER = "reminder"  # shortly before the start: the same link, nothing changed


@dataclass(frozen=True)
class _Wording:
    """The fixed words of one kind of message (English, the catalogs' keys), and its iTIP
    method (RFC 5546)."""

    subject: str  # the email's subject
    headline: str  # what happened, who acts first: "{host} invites you to a video meeting:"
    sms: str  # the whole text message
    attached: str | None  # the email's last line, when an invite is attached
    method: str | None  # None: no invite (a reminder changes nothing in the calendar)
    link: bool  # whether the guest is given the link


_WORDING = {
    MessageKind.INVITATION: _Wording(
        N_("Your video meeting: {subject}"),
        N_("{host} invites you to a video meeting:"),
        N_("{host} invites you to a video meeting ({subject}), {when}. Join: {url}"),
        N_("A calendar invite is attached."), "REQUEST", link=True),
    MessageKind.UPDATE: _Wording(
        N_("Moved: Your video meeting: {subject}"),
        N_("{host} moved your video meeting to a new time:"),
        N_("{host} moved your video meeting ({subject}) to {when}. Join: {url}"),
        N_("The updated calendar invite is attached."), "REQUEST", link=True),
    MessageKind.CANCELLATION: _Wording(
        N_("Cancelled: Your video meeting: {subject}"),
        N_("{host} cancelled the video meeting:"),
        N_("{host} cancelled the video meeting ({subject}) of {when}."),
        N_("A calendar cancellation is attached."), "CANCEL", link=False),
    # Said without "soon" or "in 15 minutes": a reminder sent late (the bot was down) still
    # reads right.
    MessageKind.REMINDER: _Wording(
        N_("Reminder: Your video meeting: {subject}"),
        N_("Reminder: {host} invites you to a video meeting:"),
        N_("Reminder: {host} invites you to a video meeting ({subject}), {when}. Join: {url}"),
        None, None, link=True),
}
_NEW_LINK = N_("Please use this new link: the one sent before no longer leads to this meeting.")
_NOT_TAKING_PLACE = N_("The meeting will not take place: its link is no longer needed.")
_NO_ACCOUNT = N_("The link opens in a web browser or the Webex app; no account is needed.")


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of a guest language, read from the installed package; English, the
    language the messages are written in, needs none."""
    if language == DEFAULT_GUEST_LANGUAGE:
        return gettext.NullTranslations()
    catalog = files("bot") / "locale" / language / "LC_MESSAGES" / f"{CATALOG_DOMAIN}.mo"
    with catalog.open("rb") as compiled:
        return gettext.GNUTranslations(compiled)


@dataclass(frozen=True)
class Invitation:
    """One guest's message about one meeting: which meeting, when, their link, who acts, in
    which language."""

    subject: str
    link: Link  # the guest's link; a cancellation shows none and reads only the guest's number
    start: int  # the appointment (epoch seconds): the invite's DTSTART and the "When:"
    end: int  # its end: DTEND
    tz: tzinfo
    note: str
    organizer_name: str  # who made the meeting: the same in every message of the meeting
    organizer_email: str | None
    meeting_id: str  # the bot's own id of the meeting, whatever its links: the invite's UID
    sequence: int  # the invite's SEQUENCE: 0 first, raised by each update and the cancellation;
    # an invitation sent again carries the meeting's current one
    kind: MessageKind
    org_name: str = ""  # ORG_NAME: the organisation the person invites for
    language: str = DEFAULT_GUEST_LANGUAGE  # one of GUEST_LANGUAGES: what the guest reads
    opens: int | None = None  # when the link starts to work, if before the start (epoch s)

    def __post_init__(self) -> None:
        if self.kind in (MessageKind.UPDATE, MessageKind.CANCELLATION) and self.sequence < 1:
            raise ValueError(f"{self.kind.name} needs a SEQUENCE above the invitation's 0")
        if self.language not in GUEST_LANGUAGES:
            raise ValueError(f"no guest language {self.language!r}")

    def _(self, message: str, **values: object) -> str:
        """A message in the guest's language, its placeholders filled."""
        return translations(self.language).gettext(message).format(**values)

    @property
    def sender(self) -> str:
        """Who acts, as the guest reads it: "Dr Claire Martin, Clinique du Parc"."""
        return ", ".join(self._names) or self._("Your host")

    @property
    def host(self) -> str:
        """Who acts, as a sentence starts with it: the apposition set off, "Dr Claire Martin,
        Clinique du Parc," (then "invites you")."""
        return f"{self.sender}{',' if len(self._names) == 2 else ''}"

    @property
    def wording(self) -> _Wording:
        return _WORDING[self.kind]

    @property
    def headline(self) -> str:
        """"Dr Claire Martin invites you to a video meeting:": what this message is."""
        return self._(self.wording.headline, host=self.host)

    @property
    def _names(self) -> list[str]:
        return [name for name in (self.organizer_name, self.org_name) if name]

    @property
    def join_url(self) -> str:
        """The short link when there is one: it fits a text message and a readable QR code."""
        return self.link.short_url or self.link.url

    @property
    def window(self) -> str:
        """The appointment in the guest's language, with its UTC offset once: a guest may live
        in another zone."""
        return describe_appointment(self.start, self.end, self.tz, self.language)

    @property
    def early(self) -> str | None:
        """How early the guest may join, when the link opens before the start."""
        if self.opens is None or self.opens >= self.start or not self.wording.link:
            return None
        count = round((self.start - self.opens) / 60)
        return translations(self.language).ngettext(
            "You can join from {count} minute before the start.",
            "You can join from {count} minutes before the start.", count).format(count=count)

    @property
    def uid(self) -> str:
        return f"{self.meeting_id}-{self.link.role}-{self.link.number}@instant-connect-bot"


def guest_email(invitation: Invitation, to: str, mail_from: str) -> EmailMessage:
    """The whole email for one guest, from ``mail_from`` under the name of who invites
    (Message-ID and Date are the mail sender's to set)."""
    wording = invitation.wording
    message = EmailMessage()
    user, _, domain = mail_from.rpartition("@")
    message["From"] = Address(invitation.sender, user, domain)
    message["To"] = to
    message["Subject"] = invitation._(wording.subject, subject=invitation.subject)
    if invitation.organizer_email:
        message["Reply-To"] = invitation.organizer_email
    attached = invitation._(wording.attached) + "\n" if wording.attached else ""
    message.set_content(_text(invitation) + attached)
    qr = qr_png(invitation.join_url) if wording.link else None
    qr_cid = make_msgid(domain="instant-connect-bot")
    message.add_alternative(_html(invitation, qr_cid[1:-1]), subtype="html")
    if qr:
        page = message.get_body(preferencelist=("html",))
        assert isinstance(page, EmailMessage)  # the part just added
        page.add_related(qr, "image", "png", cid=qr_cid, disposition="inline")
    invite = calendar_invite(invitation, to, mail_from) if wording.method else None
    method = {"method": wording.method or ""}  # the calendar's METHOD, said again for clients
    if invite:
        message.add_alternative(invite, subtype="calendar", params=method)
    if qr:
        message.add_attachment(qr, "image", "png", filename=QR_FILENAME)
    if invite:
        message.add_attachment(invite, subtype="calendar", filename=INVITE_FILENAME,
                               params=method)  # as text: declared UTF-8
    # Last: a part made multipart takes the Content- headers set before (RFC 3282).
    message["Content-Language"] = invitation.language
    return message


def guest_sms(invitation: Invitation) -> str:
    """Who acts, on which meeting, when, and the link unless cancelled: two segments with a
    short link."""
    return invitation._(invitation.wording.sms, host=invitation.host,
                        subject=invitation.subject, when=gsm7_date(invitation.window),
                        url=invitation.join_url)


# The letters with an accent that GSM 03.38 has; others (á, ç, û) would make a text UCS-2.
_GSM7_ACCENTED = frozenset("ÄÅÆÇÉÑÖØÜßàäåæèéìñòöøùü")
_GSM7_TYPOGRAPHY = str.maketrans({"\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2013": "-"})


def gsm7_date(text: str) -> str:
    """A date as CLDR writes it, in the GSM-7 alphabet: its thin and no-break spaces and its
    dash plain, a letter with an accent GSM-7 lacks without it ("sáb" as "sab", "août" as
    "aout"), as text messages in these languages are commonly written."""
    return "".join(
        char if char.isascii() or char in _GSM7_ACCENTED
        else unicodedata.normalize("NFD", char)[0]
        for char in text.translate(_GSM7_TYPOGRAPHY))


def qr_png(url: str) -> bytes:
    """A QR code of ``url`` as a PNG a phone camera reads from a screen."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def calendar_invite(invitation: Invitation, attendee: str, mail_from: str) -> str:
    """The iTIP message: the appointment as the event, the link as URL and in the text (unless
    cancelled), the organizer at ``mail_from`` when the person has no email."""
    wording = invitation.wording
    assert wording.method is not None, f"a {invitation.kind.value} carries no invite"
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", wording.method)
    event = icalendar.Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", datetime.fromtimestamp(invitation.start, UTC))
    event.add("dtend", datetime.fromtimestamp(invitation.end, UTC))
    language = {"language": invitation.language}  # what the text is written in (RFC 5545)
    event.add("summary", invitation._("Video meeting: {subject}", subject=invitation.subject),
              parameters=language)
    if wording.link:
        event.add("url", invitation.join_url)
        event.add("location", invitation.join_url)
    else:
        event.add("status", "CANCELLED")
    event.add("description", _text(invitation), parameters=language)
    organizer = icalendar.vCalAddress(f"mailto:{invitation.organizer_email or mail_from}")
    organizer.params["cn"] = icalendar.vText(invitation.organizer_name)
    event.add("organizer", organizer)
    if "@" in attendee:
        guest = icalendar.vCalAddress(f"mailto:{attendee}")
        guest.params["cn"] = icalendar.vText(attendee)  # no name is known: the address
        guest.params["cutype"] = icalendar.vText("INDIVIDUAL")
        guest.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        if wording.method == "REQUEST":  # a CANCEL has no answer (RFC 5546)
            guest.params["partstat"] = icalendar.vText("NEEDS-ACTION")
            guest.params["rsvp"] = icalendar.vText("TRUE")
        event.add("attendee", guest)
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def _text(invitation: Invitation) -> str:
    """The email's text, and the invite's DESCRIPTION (which is no place to say it is
    attached)."""
    _ = invitation._
    lines = [f"{invitation.headline} {invitation.subject}", "",
             _("When: {when}", when=invitation.window)]
    if not invitation.wording.link:
        return "\n".join([*lines, "", _(_NOT_TAKING_PLACE)]) + "\n"
    lines.append(_("Join: {url}", url=invitation.join_url))
    if invitation.link.short_url:
        lines.append(_("(or {url})", url=invitation.link.url))
    if invitation.early:
        lines.append(invitation.early)
    if invitation.kind is MessageKind.UPDATE:
        lines += ["", _(_NEW_LINK)]
    if invitation.note:
        lines += ["", invitation.note]
    lines += ["", _(_NO_ACCOUNT)]
    return "\n".join(lines) + "\n"


def _html(invitation: Invitation, qr_cid: str) -> str:
    wording, _ = invitation.wording, invitation._
    body = (_html_join(invitation, qr_cid) if wording.link
            else f'<p style="margin:0 0 16px">{html.escape(_(_NOT_TAKING_PLACE))}</p>')
    attached = (f'<p style="margin:16px 0 0;font-size:12px;color:#555">'
                f'{html.escape(_(wording.attached))}</p>' if wording.attached else "")
    return f"""<!doctype html>
<html lang="{invitation.language}">
<body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;color:#1a1a1a">
<table role="presentation" width="100%" style="max-width:560px;border-collapse:collapse">
<tr><td>
<p style="margin:0 0 8px">{html.escape(invitation.headline)}</p>
<h1 style="margin:0 0 16px;font-size:22px">{html.escape(invitation.subject)}</h1>
<p style="margin:0 0 16px">{html.escape(invitation.window)}</p>
{body}
{attached}
</td></tr></table>
</body></html>
"""


def _html_join(invitation: Invitation, qr_cid: str) -> str:
    """The button, the links, the note and the QR code of an invitation or an update."""
    _ = invitation._
    url = html.escape(invitation.join_url, quote=True)
    full = html.escape(invitation.link.url, quote=True)
    button, open_link = html.escape(_("Join the meeting")), html.escape(_("Or open this link:"))
    full_link = html.escape(_("The full link, if the short one does not open:"))
    scan = html.escape(_("On another device? Scan this code:"))
    qr_text = html.escape(_("QR code of the meeting link"), quote=True)
    note = (f'<p style="margin:16px 0;white-space:pre-wrap">{html.escape(invitation.note)}</p>'
            if invitation.note else "")
    long_link = (f'<p style="margin:0 0 16px;font-size:11px;color:#555;word-break:break-all">'
                 f'{full_link} <a href="{full}">{full}</a></p>' if invitation.link.short_url
                 else "")
    new_link = (f'<p style="margin:0 0 16px"><strong>{html.escape(_(_NEW_LINK))}</strong></p>'
                if invitation.kind is MessageKind.UPDATE else "")
    early = (f'<p style="margin:0 0 16px;font-size:13px">{html.escape(invitation.early)}</p>'
             if invitation.early else "")
    return f"""{new_link}
<p style="margin:0 0 16px"><a href="{url}" style="display:inline-block;padding:12px 24px;
background:#0a7d4f;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:bold">{
button}</a></p>
<p style="margin:0 0 16px;font-size:13px;word-break:break-all">{open_link}
<a href="{url}">{url}</a></p>
{long_link}
{early}
{note}
<p style="margin:16px 0 4px;font-size:13px">{scan}</p>
<img src="cid:{qr_cid}" width="180" height="180" alt="{qr_text}">
<p style="margin:16px 0 0;font-size:12px;color:#555">{html.escape(_(_NO_ACCOUNT))}</p>"""
