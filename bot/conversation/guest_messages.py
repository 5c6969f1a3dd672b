"""What a guest receives outside Webex: an email with a join button, a QR code and a calendar
invite, or a text message with the short link.

Both say who invites (the person and, when ``ORG_NAME`` is set, the organisation): a message
from an unknown sender with a link reads like phishing. The email is plain text and HTML (the
QR code inline, and attached; the short link to click, the long one beside it), plus the invite
twice: as a ``text/calendar; method=REQUEST`` alternative that mail clients offer to add, and as
an ``.ics`` attachment for those that do not. The invite's UID is stable per meeting and guest,
so a second copy updates the first instead of adding an event; its SEQUENCE starts at 0 for
that update to raise, and the guest is asked to answer (RSVP, PARTSTAT=NEEDS-ACTION, RFC 5546).
The text message's fixed words are in the GSM-7 alphabet, so a subject and names in it keep the
whole text GSM-7: two segments with the short link.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

import icalendar
import segno

from bot.conversation.timewindow import describe_window
from bot.upstream.instant_connect import Link

QR_FILENAME = "join-qr.png"
INVITE_FILENAME = "invite.ics"
PRODUCT_ID = "-//Instant Connect bot//EN"


@dataclass(frozen=True)
class Invitation:
    """One guest's way into one meeting, and what the message says around it."""

    subject: str
    link: Link
    nbf: int
    exp: int
    tz: tzinfo
    note: str
    organizer_name: str
    organizer_email: str | None
    meeting_id: str  # the broker's ``sub``: unique per meeting
    org_name: str = ""  # ORG_NAME: the organisation the person invites for

    @property
    def sender(self) -> str:
        """Who invites, as the guest reads it: "Dr Claire Martin, Clinique du Parc"."""
        return ", ".join(self._names) or "Your host"

    @property
    def invites_you(self) -> str:
        """"Dr Claire Martin, Clinique du Parc, invites you" (the apposition set off)."""
        return f"{self.sender}{',' if len(self._names) == 2 else ''} invites you"

    @property
    def _names(self) -> list[str]:
        return [name for name in (self.organizer_name, self.org_name) if name]

    @property
    def join_url(self) -> str:
        """The short link when there is one: it fits a text message and a readable QR code."""
        return self.link.short_url or self.link.url

    @property
    def window(self) -> str:
        """The window as the space reads it, with its UTC offset once: a guest may live in
        another zone."""
        return describe_window(self.nbf, self.exp, self.tz, offset=True)

    @property
    def uid(self) -> str:
        return f"{self.meeting_id}-{self.link.role}-{self.link.number}@instant-connect-bot"


def guest_email(invitation: Invitation, to: str, mail_from: str) -> EmailMessage:
    """The whole email for one guest, from ``mail_from`` under the name of who invites
    (Message-ID and Date are the mail sender's to set)."""
    message = EmailMessage()
    user, _, domain = mail_from.rpartition("@")
    message["From"] = Address(invitation.sender, user, domain)
    message["To"] = to
    message["Subject"] = f"Your video meeting: {invitation.subject}"
    if invitation.organizer_email:
        message["Reply-To"] = invitation.organizer_email
    message.set_content(_text(invitation) + "A calendar invite is attached.\n")
    qr_cid = make_msgid(domain="instant-connect-bot")
    message.add_alternative(_html(invitation, qr_cid[1:-1]), subtype="html")
    qr = qr_png(invitation.join_url)
    page = message.get_body(preferencelist=("html",))
    assert isinstance(page, EmailMessage)  # the part just added
    page.add_related(qr, "image", "png", cid=qr_cid, disposition="inline")
    invite = calendar_invite(invitation, to)
    message.add_alternative(invite, subtype="calendar", params={"method": "REQUEST"})
    message.add_attachment(qr, "image", "png", filename=QR_FILENAME)
    message.add_attachment(invite, subtype="calendar", filename=INVITE_FILENAME,
                           params={"method": "REQUEST"})  # as text: declared UTF-8
    return message


def guest_sms(invitation: Invitation) -> str:
    """Who invites, the subject, the window and the link: two segments with a short link."""
    return (f"{invitation.invites_you} to a video meeting ({invitation.subject}), "
            f"{invitation.window}. Join: {invitation.join_url}")


def qr_png(url: str) -> bytes:
    """A QR code of ``url`` as a PNG a phone camera reads from a screen."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def calendar_invite(invitation: Invitation, attendee: str) -> str:
    """An iCalendar REQUEST: the validity window as the event, the link as URL and in the text."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", invitation.uid)
    event.add("sequence", 0)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", datetime.fromtimestamp(invitation.nbf, UTC))
    event.add("dtend", datetime.fromtimestamp(invitation.exp, UTC))
    event.add("summary", invitation.subject)
    event.add("url", invitation.join_url)
    event.add("location", invitation.join_url)
    event.add("description", _text(invitation))
    if invitation.organizer_email:
        organizer = icalendar.vCalAddress(f"mailto:{invitation.organizer_email}")
        organizer.params["cn"] = icalendar.vText(invitation.organizer_name)
        event.add("organizer", organizer)
    if "@" in attendee:
        guest = icalendar.vCalAddress(f"mailto:{attendee}")
        guest.params["cn"] = icalendar.vText(attendee)  # no name is known: the address
        guest.params["cutype"] = icalendar.vText("INDIVIDUAL")
        guest.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        guest.params["partstat"] = icalendar.vText("NEEDS-ACTION")
        guest.params["rsvp"] = icalendar.vText("TRUE")
        event.add("attendee", guest)
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def _text(invitation: Invitation) -> str:
    """The email's text, and the invite's DESCRIPTION (which is no place to say it is
    attached)."""
    lines = [
        f"{invitation.invites_you} to a video meeting: {invitation.subject}",
        "",
        f"When: {invitation.window}",
        f"Join: {invitation.join_url}",
    ]
    if invitation.link.short_url:
        lines.append(f"(or {invitation.link.url})")
    if invitation.note:
        lines += ["", invitation.note]
    lines += ["", "The link opens in a web browser or the Webex app; no account is needed."]
    return "\n".join(lines) + "\n"


def _html(invitation: Invitation, qr_cid: str) -> str:
    url = html.escape(invitation.join_url, quote=True)
    note = (f'<p style="margin:16px 0;white-space:pre-wrap">{html.escape(invitation.note)}</p>'
            if invitation.note else "")
    host = html.escape(invitation.invites_you)
    full = html.escape(invitation.link.url, quote=True)
    long_link = (f'<p style="margin:0 0 16px;font-size:11px;color:#555;word-break:break-all">'
                 f'The full link, if the short one does not open: <a href="{full}">{full}</a>'
                 "</p>" if invitation.link.short_url else "")
    return f"""<!doctype html>
<html><body style="margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;color:#1a1a1a">
<table role="presentation" width="100%" style="max-width:560px;border-collapse:collapse">
<tr><td>
<p style="margin:0 0 8px">{host} to a video meeting:</p>
<h1 style="margin:0 0 16px;font-size:22px">{html.escape(invitation.subject)}</h1>
<p style="margin:0 0 16px">{html.escape(invitation.window)}</p>
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
Webex app; no account is needed. A calendar invite is attached.</p>
</td></tr></table>
</body></html>
"""
