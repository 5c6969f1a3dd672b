"""What a guest receives outside Webex about their meeting: an invitation, an update when the
meeting moves, a cancellation; each as an email with a calendar invite, or a text message.

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

A cancellation carries no link, no button and no QR code: nobody waits there any more. The text
message's fixed words are in the GSM-7 alphabet, so a subject and names in it keep the whole
text GSM-7: two segments with the short link.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from enum import Enum

import icalendar
import segno

from bot.conversation.timewindow import describe_window
from bot.upstream.instant_connect import Link

QR_FILENAME = "join-qr.png"
INVITE_FILENAME = "invite.ics"
PRODUCT_ID = "-//Instant Connect bot//EN"


class MessageKind(Enum):
    """What a message tells a guest about their meeting."""

    INVITATION = "invitation"
    UPDATE = "update"  # the meeting moved: a new time and a new link
    CANCELLATION = "cancellation"


@dataclass(frozen=True)
class _Wording:
    """The fixed words of one kind of message, and its iTIP method (RFC 5546)."""

    subject_prefix: str  # before "Your video meeting: ..." in the email's subject
    action: str  # after who acts: "invites you to a video meeting"
    sms: str  # the text message, after who acts
    attached: str  # the email's last line
    method: str
    link: bool  # whether the guest is given the link


_WORDING = {
    MessageKind.INVITATION: _Wording(
        "", "invites you to a video meeting",
        "invites you to a video meeting ({subject}), {when}. Join: {url}",
        "A calendar invite is attached.", "REQUEST", link=True),
    MessageKind.UPDATE: _Wording(
        "Moved: ", "moved your video meeting to a new time",
        "moved your video meeting ({subject}) to {when}. Join: {url}",
        "The updated calendar invite is attached.", "REQUEST", link=True),
    MessageKind.CANCELLATION: _Wording(
        "Cancelled: ", "cancelled the video meeting",
        "cancelled the video meeting ({subject}) of {when}.",
        "A calendar cancellation is attached.", "CANCEL", link=False),
}
_NEW_LINK = "Please use this new link: the one sent before no longer leads to this meeting."
_NOT_TAKING_PLACE = "The meeting will not take place: its link is no longer needed."


@dataclass(frozen=True)
class Invitation:
    """One guest's message about one meeting: which meeting, when, their link, who acts."""

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

    def __post_init__(self) -> None:
        if self.kind is not MessageKind.INVITATION and self.sequence < 1:
            raise ValueError(f"{self.kind.name} needs a SEQUENCE above the invitation's 0")

    @property
    def sender(self) -> str:
        """Who acts, as the guest reads it: "Dr Claire Martin, Clinique du Parc"."""
        return ", ".join(self._names) or "Your host"

    def by_sender(self, words: str) -> str:
        """"Dr Claire Martin, Clinique du Parc, invites you" (the apposition set off)."""
        return f"{self.sender}{',' if len(self._names) == 2 else ''} {words}"

    @property
    def wording(self) -> _Wording:
        return _WORDING[self.kind]

    @property
    def headline(self) -> str:
        """"Dr Claire Martin invites you to a video meeting": what this message is."""
        return self.by_sender(self.wording.action)

    @property
    def _names(self) -> list[str]:
        return [name for name in (self.organizer_name, self.org_name) if name]

    @property
    def join_url(self) -> str:
        """The short link when there is one: it fits a text message and a readable QR code."""
        return self.link.short_url or self.link.url

    @property
    def window(self) -> str:
        """The appointment as the space reads it, with its UTC offset once: a guest may live
        in another zone."""
        return describe_window(self.start, self.end, self.tz, offset=True)

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
    message["Subject"] = f"{wording.subject_prefix}Your video meeting: {invitation.subject}"
    if invitation.organizer_email:
        message["Reply-To"] = invitation.organizer_email
    message.set_content(_text(invitation) + f"{wording.attached}\n")
    qr = qr_png(invitation.join_url) if wording.link else None
    qr_cid = make_msgid(domain="instant-connect-bot")
    message.add_alternative(_html(invitation, qr_cid[1:-1]), subtype="html")
    if qr:
        page = message.get_body(preferencelist=("html",))
        assert isinstance(page, EmailMessage)  # the part just added
        page.add_related(qr, "image", "png", cid=qr_cid, disposition="inline")
    invite = calendar_invite(invitation, to, mail_from)
    method = {"method": wording.method}  # the calendar's METHOD, said again for the client
    message.add_alternative(invite, subtype="calendar", params=method)
    if qr:
        message.add_attachment(qr, "image", "png", filename=QR_FILENAME)
    message.add_attachment(invite, subtype="calendar", filename=INVITE_FILENAME,
                           params=method)  # as text: declared UTF-8
    return message


def guest_sms(invitation: Invitation) -> str:
    """Who acts, on which meeting, when, and the link unless cancelled: two segments with a
    short link."""
    return invitation.by_sender(invitation.wording.sms.format(
        subject=invitation.subject, when=invitation.window, url=invitation.join_url))


def qr_png(url: str) -> bytes:
    """A QR code of ``url`` as a PNG a phone camera reads from a screen."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def calendar_invite(invitation: Invitation, attendee: str, mail_from: str) -> str:
    """The iTIP message: the appointment as the event, the link as URL and in the text (unless
    cancelled), the organizer at ``mail_from`` when the person has no email."""
    wording = invitation.wording
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
    event.add("summary", invitation.subject)
    if wording.link:
        event.add("url", invitation.join_url)
        event.add("location", invitation.join_url)
    else:
        event.add("status", "CANCELLED")
    event.add("description", _text(invitation))
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
    lines = [f"{invitation.headline}: {invitation.subject}", "", f"When: {invitation.window}"]
    if not invitation.wording.link:
        return "\n".join([*lines, "", _NOT_TAKING_PLACE]) + "\n"
    lines.append(f"Join: {invitation.join_url}")
    if invitation.link.short_url:
        lines.append(f"(or {invitation.link.url})")
    if invitation.kind is MessageKind.UPDATE:
        lines += ["", _NEW_LINK]
    if invitation.note:
        lines += ["", invitation.note]
    lines += ["", "The link opens in a web browser or the Webex app; no account is needed."]
    return "\n".join(lines) + "\n"


def _html(invitation: Invitation, qr_cid: str) -> str:
    wording = invitation.wording
    body = (_html_join(invitation, qr_cid) if wording.link
            else f'<p style="margin:0 0 16px">{_NOT_TAKING_PLACE}</p>')
    return f"""<!doctype html>
<html><body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;color:#1a1a1a">
<table role="presentation" width="100%" style="max-width:560px;border-collapse:collapse">
<tr><td>
<p style="margin:0 0 8px">{html.escape(invitation.headline)}:</p>
<h1 style="margin:0 0 16px;font-size:22px">{html.escape(invitation.subject)}</h1>
<p style="margin:0 0 16px">{html.escape(invitation.window)}</p>
{body}
<p style="margin:16px 0 0;font-size:12px;color:#555">{html.escape(wording.attached)}</p>
</td></tr></table>
</body></html>
"""


def _html_join(invitation: Invitation, qr_cid: str) -> str:
    """The button, the links, the note and the QR code of an invitation or an update."""
    url = html.escape(invitation.join_url, quote=True)
    note = (f'<p style="margin:16px 0;white-space:pre-wrap">{html.escape(invitation.note)}</p>'
            if invitation.note else "")
    full = html.escape(invitation.link.url, quote=True)
    long_link = (f'<p style="margin:0 0 16px;font-size:11px;color:#555;word-break:break-all">'
                 f'The full link, if the short one does not open: <a href="{full}">{full}</a>'
                 "</p>" if invitation.link.short_url else "")
    new_link = (f'<p style="margin:0 0 16px"><strong>{_NEW_LINK}</strong></p>'
                if invitation.kind is MessageKind.UPDATE else "")
    return f"""{new_link}
<p style="margin:0 0 16px"><a href="{url}" style="display:inline-block;padding:12px 24px;
background:#0a7d4f;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:bold">Join
the meeting</a></p>
<p style="margin:0 0 16px;font-size:13px;word-break:break-all">Or open this link:
<a href="{url}">{url}</a></p>
{long_link}
{note}
<p style="margin:16px 0 4px;font-size:13px">On another device? Scan this code:</p>
<img src="cid:{qr_cid}" width="180" height="180" alt="QR code of the meeting link">
<p style="margin:16px 0 0;font-size:12px;color:#555">The link opens in a web browser or the
Webex app; no account is needed.</p>"""
