"""The life of a meeting once its request is checked: made once, its links told, its guests
reached; then listed, its links sent again, its time changed, or cancelled; its reminders at
their moment (``reminders``); and later, what a guest's text message became (the person told
once, in the links message's thread, of one that was not delivered).

Every step is written to the meeting's record before and after it acts, so a retried event
resumes where the last try stopped: the broker is asked at most once per version of the meeting
(once links are recorded, never again), the outbox keeps every message from going out twice,
and the audit trail gets one row per thing done, however often the event is tried. Who may act
on a meeting: its maker and, unless ``MEETING_ACTIONS=maker``, the members of the space where
it was made.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from bot.conversation import replies
from bot.conversation.config import ConversationConfig
from bot.conversation.contacts import Contact
from bot.conversation.context import EventContext, Place, Sender
from bot.conversation.guest_delivery import GuestDelivery
from bot.conversation.guest_messages import MessageKind
from bot.conversation.late_deliveries import LateTry
from bot.conversation.link_messages import Outgoing, compose
from bot.conversation.plan import MeetingPlan, appointment, link_window
from bot.conversation.reminders import Due, Reminders, Whom, missed, stale, too_soon_note
from bot.conversation.timewindow import describe_window
from bot.errors import BotError
from bot.meetings.book import Change, MeetingBook
from bot.meetings.record import FAILED_FATES, Delivery, Fate, Meeting
from bot.upstream.instant_connect import Broker, Link, unique_sub
from bot.upstream.sms import described_code
from bot.upstream.webex import Person, Webex

log = logging.getLogger(__name__)

RECENT = timedelta(days=7)  # how far back "meetings" lists the ones that are over
LATE_TRIES_BY = "the bot"  # who the audit trail says acted in a later try at a guest's message


@dataclass(frozen=True)
class Actor:
    """Who acts on a meeting, and from where: what the audit trail records."""

    person: Person
    context: EventContext
    key: str  # the message or submit id: a retried event acts once

    @property
    def email(self) -> str:
        return self.person.emails[0] if self.person.emails else self.person.id


class Appointments:
    """Makes meetings and acts on them; shared by every job thread."""

    def __init__(
        self, config: ConversationConfig, webex: Webex, broker: Broker, book: MeetingBook,
        guests: GuestDelivery, reminders: Reminders, *, clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._webex = webex
        self._broker = broker
        self._book = book
        self._guests = guests
        self._reminders = reminders
        self._clock = clock

    # Making

    def make(self, plan: MeetingPlan, actor: Actor, tz: tzinfo,
             refused: Callable[[], None] = lambda: None) -> Meeting:
        """Record the meeting, ask the broker once, post the links, reach the guests.
        ``refused`` runs when the broker made no links, so the request may be tried again."""
        meeting = self._book.open(actor.key, self._draft(plan, actor, tz))
        if meeting.links is None:
            try:
                links = self._broker.create_links(meeting.request)
            except BotError:
                self._book.forget(actor.key, meeting)
                refused()
                raise
            meeting = replace(meeting, links=links)
            self._book.save(meeting)
            log.info("meeting created", extra={"links": len(links.all),
                                               "room_id": actor.context.place.room_id})
        # On every try, as each audit below: a retry's row replaces its own, and a worker killed
        # just after the record leaves no gap in the audit trail.
        self._audit(meeting, actor, "created", describe_window(meeting.start, meeting.end, UTC))
        meeting = self._post_links(meeting, actor, (*plan.notices, *self._reminder_note(
            meeting, meeting.created_at)))
        if meeting.contacts:
            self._reach_guests(meeting, MessageKind.INVITATION, actor)
        self._reminders.schedule(meeting, meeting.created_at)
        return meeting

    def _draft(self, plan: MeetingPlan, actor: Actor, tz: tzinfo) -> Meeting:
        now = self._clock()
        start, end = plan.appointment(now)
        place, person = actor.context.place, actor.person
        return Meeting(
            id=MeetingBook.new_id(), maker_id=person.id,
            maker_email=person.emails[0] if person.emails else "",
            maker_name=person.display_name, room_id=place.room_id, group=place.group,
            thread=place.parent_id, subject=plan.subject, start=start, end=end,
            timezone=str(tz), request=plan.request(actor.key, now),
            valid_for=int(plan.valid_for.total_seconds()),
            private_host_links=plan.private_host_links, guest_note=plan.guest_note,
            created_at=now, notices=plan.notices, devices=self._device_names(plan.devices),
            contacts=plan.contacts, language=plan.language,
            remind_before=int(plan.remind_before.total_seconds()) if plan.remind_before else None,
        )

    def _post_links(self, meeting: Meeting, actor: Actor, notes: Sequence[str]) -> Meeting:
        """The links in the space (host links privately when asked), the appointment under
        their validity, "new" once the time was changed; the meeting with the id of the message
        that carries the guests' links."""
        assert meeting.links is not None
        context, links = actor.context, meeting.links
        moved = meeting.sequence > 0
        if meeting.private_host_links and links.hosts:
            self._tell_host_links(meeting, actor.person, context, notes)
            shown = links.guests
            say = replies.moved if moved else replies.ready
            context.say(say(meeting.subject, actor.person.display_name))
        else:
            shown = links.all
        first = None
        for message in self._composed(meeting, shown, "Meeting links", notes):
            posted = context.post(message.markdown, message.card)
            first = first or posted
        if first is not None and meeting.links_message != first:
            meeting = replace(meeting, links_message=first)
            self._book.save(meeting)
        return meeting

    def _tell_host_links(self, meeting: Meeting, person: Person, context: EventContext,
                         notes: Sequence[str] = ()) -> None:
        assert meeting.links is not None
        for message in self._composed(meeting, meeting.links.hosts, "Host links", notes):
            context.tell(person.id, message.markdown, message.card)

    def _composed(self, meeting: Meeting, links: Sequence[Link], heading: str,
                  notes: Sequence[str]) -> list[Outgoing]:
        """The messages carrying ``links``: their validity, then the appointment and ``notes``."""
        assert meeting.links is not None
        window = describe_window(meeting.links.nbf, meeting.links.exp, meeting.zone)
        when = replies.appointment(describe_window(meeting.start, meeting.end, meeting.zone))
        heading = f"New {heading[0].lower()}{heading[1:]}" if meeting.sequence > 0 else heading
        return compose(meeting.subject, window, meeting.devices, links, heading,
                       notes=(when, *notes))

    def _reach_guests(self, meeting: Meeting, kind: MessageKind, actor: Actor) -> None:
        """Each guest's message of ``kind``; each outcome recorded and audited as it comes."""
        remember = self._recorder(meeting.id, kind, actor.email, actor.context.place.room_id,
                                  actor.key)
        self._guests.deliver(meeting, kind, actor.context, remember, key=actor.key)

    def deliver_late(self, late: LateTry, sender: Sender) -> None:
        """A later try at a guest's message that could not go out at once (a due job); its
        outcome recorded and audited as the bot's own doing."""
        meeting = self._book.get(late.meeting)
        if meeting is None:  # deleted since: nobody left to reach or to tell
            return
        remember = self._recorder(meeting.id, late.kind, LATE_TRIES_BY, meeting.room_id,
                                  late.id, f" (later try {late.number})")
        self._guests.deliver_late(meeting, late, sender, remember)

    def _recorder(self, meeting_id: str, kind: MessageKind, who: str, where: str, key: str,
                  note: str = "") -> Callable[[Delivery, Contact], None]:
        """What records each delivery's outcome on the meeting as it is then (read again: a
        later try may run while the meeting changes) and in the audit trail, once per ``key``."""

        def remember(delivery: Delivery, contact: Contact) -> None:
            meeting = self._book.get(meeting_id)
            if meeting is None:
                return
            if delivery.reference:  # first: what its provider says of it may come at once
                self._book.track(meeting, delivery)
            if kind is not MessageKind.REMINDER:  # a reminder leaves what became of the link
                meeting = meeting.delivered(delivery)
                self._book.save(meeting)
            what = _GUEST_EVENTS[kind]
            detail = (f"guest {delivery.guest + 1} {contact.channel} {contact.masked}: "
                      f"{delivery.outcome}{note}")
            self._book.audit(meeting, who, where, what, detail, row_id=_row_id(key, what, detail))

        return remember

    # Acting on a meeting made earlier

    def may_act(self, person: Person, meeting: Meeting) -> bool:
        """The maker may; so may the members of the group space it was made in, unless the
        settings keep it to the maker."""
        if person.id == meeting.maker_id:
            return True
        if not meeting.group or self._config.meeting_actions == "maker":
            return False
        return self._webex.membership(meeting.room_id, person.id) is not None

    def send_host_links(self, meeting: Meeting, actor: Actor) -> None:
        """The host links, to whoever asked, in their 1:1 space."""
        if not meeting.links or not meeting.links.hosts:
            actor.context.say(replies.NO_LINKS_KEPT)
            return
        self._tell_host_links(meeting, actor.person, actor.context)
        actor.context.say(replies.host_links_sent(meeting.subject, actor.person.display_name))
        self._audit(meeting, actor, "host links sent")

    def resend(self, meeting: Meeting, actor: Actor) -> None:
        """Each guest's invitation again, as the meeting is now."""
        if not meeting.contacts or meeting.links is None:
            actor.context.say(replies.NO_GUESTS_KEPT)
            return
        self._audit(meeting, actor, "guest links resent")
        self._reach_guests(meeting, MessageKind.INVITATION, actor)

    def change(self, meeting: Meeting, start: datetime, actor: Actor) -> None:
        """A new time: new links (a new ``sub``, so the old ones lead nowhere anyone waits),
        the space told and the old links message pointed at the new one, each guest an
        update that moves the event in their calendar."""
        if meeting.revision != actor.key:
            planned = self._book.planned_change(actor.key, lambda: self._plan_change(
                meeting, start, actor.key))
            request = replace(meeting.request, sub=planned.sub, nbf=planned.nbf,
                              exp=planned.exp)
            links = self._broker.create_links(request)
            meeting = replace(meeting, start=planned.start, end=planned.end, request=request,
                              links=links, sequence=meeting.sequence + 1,
                              revision=actor.key)
            self._book.save(meeting)
        self._audit(meeting, actor, "changed",
                    f"to {describe_window(meeting.start, meeting.end, UTC)}")
        if meeting.links_message is not None:  # a reply to it, or in the thread it is in
            actor.context.sender.send(room_id=meeting.room_id,
                                      parent_id=meeting.thread or meeting.links_message,
                                      markdown=replies.REPLACED_BELOW)
        moved, now = _in_its_space(meeting, actor), self._clock()
        meeting = self._post_links(meeting, moved, self._reminder_note(meeting, now))
        if meeting.contacts:
            self._reach_guests(meeting, MessageKind.UPDATE, moved)
        self._reminders.replace(meeting, now)

    def _plan_change(self, meeting: Meeting, start: datetime, key: str) -> Change:
        now = self._clock()
        duration = timedelta(seconds=meeting.end - meeting.start)
        begin, end = appointment(start, duration, now)
        nbf, exp = link_window(start, timedelta(seconds=meeting.valid_for), now, duration)
        return Change(start=begin, end=end, sub=unique_sub(meeting.subject, key), nbf=nbf,
                      exp=exp)

    def cancel(self, meeting: Meeting, actor: Actor) -> None:
        """The meeting called off: each guest a cancellation, its space told (and the person
        where they pressed). Instant Connect documents no way to revoke links, so they are told
        the links stay valid."""
        if meeting.revision != actor.key:
            meeting = replace(meeting, cancelled=True, sequence=meeting.sequence + 1,
                              revision=actor.key)
            self._book.save(meeting)
        self._audit(meeting, actor, "cancelled")
        self._reminders.replace(meeting, self._clock())
        there = _in_its_space(meeting, actor)
        if meeting.contacts and meeting.links is not None:
            self._reach_guests(meeting, MessageKind.CANCELLATION, there)
        until = describe_window(meeting.request.nbf or meeting.start, meeting.request.exp
                                or meeting.end, meeting.zone)
        there.context.say(replies.cancelled(meeting.subject, until))
        if actor.context.place.room_id != meeting.room_id:  # pressed elsewhere: said there too
            actor.context.say(replies.cancelled(meeting.subject, until))

    # Reminders, at their moment

    def remind(self, due: Due, context: EventContext, key: str) -> None:
        """A reminder job: the meeting read as it is now, acted on only for the version the job
        was scheduled for; a reminder come too late is dropped, and the audit trail says so."""
        meeting = self._book.get(due.meeting)
        if meeting is None or stale(due, meeting):
            return
        maker = Person(meeting.maker_id, (meeting.maker_email,) if meeting.maker_email else (),
                       meeting.maker_name, None)
        there = Actor(maker, context.at(Place(meeting.room_id, meeting.group,
                                              meeting.thread or meeting.links_message)), key)
        if missed(due, meeting, self._clock()):
            self._audit(meeting, there, "reminder skipped",
                        f"to the {due.whom.value}: the meeting had started")
            log.info("a reminder came too late and was dropped",
                     extra={"meeting_id": meeting.id})
            return
        if due.whom is Whom.MAKER:
            self._tell_it_starts(meeting, there)
        elif meeting.contacts and meeting.links is not None:
            self._reach_guests(meeting, MessageKind.REMINDER, there)

    def _tell_it_starts(self, meeting: Meeting, maker: Actor) -> None:
        """The maker told in their 1:1 space that the meeting starts, with their host links."""
        links = meeting.links
        if links is None or not links.hosts:
            maker.context.tell(meeting.maker_id, replies.starts_now(meeting.subject))
        else:
            window = describe_window(links.nbf, links.exp, meeting.zone)
            when = replies.appointment(describe_window(meeting.start, meeting.end,
                                                       meeting.zone))
            for message in compose(meeting.subject, window, meeting.devices, links.hosts,
                                   replies.STARTS_NOW_HEADING, notes=(when,)):
                maker.context.tell(meeting.maker_id, message.markdown, message.card)
        self._audit(meeting, maker, "start told to the maker")

    def _reminder_note(self, meeting: Meeting, now: float) -> tuple[str, ...]:
        note = too_soon_note(meeting, now)
        return (note,) if note else ()

    # What a guest's text message became

    def note_fate(self, reference: str, fate: Fate, sender: Sender) -> None:
        """Record what the provider said of a guest's text message; when it is the word that
        the message was not delivered (the first final word, so once), audit it and tell the
        space, in the thread of the links message, unless a newer message replaced that one."""
        sent = self._book.sent_text(reference)
        if sent is None:  # the endpoint refuses these; kept no longer since
            return
        standing = self._book.note_fate(sent, reference, fate)
        if standing != fate or fate.status not in FAILED_FATES:
            return
        meeting = self._book.get(sent.meeting)
        if meeting is None or _replaced(meeting, sent.guest, reference):
            return
        contact = meeting.contacts[sent.guest] if sent.guest < len(meeting.contacts) else None
        shown = contact.shown(privately=not meeting.group) if contact else "their number"
        why = described_code(fate.error_code)
        masked = contact.masked if contact else "(contact no longer kept)"
        self._book.audit(meeting, "Twilio", meeting.room_id, "guest text not delivered",
                         f"guest {sent.guest + 1} sms {masked}: {fate.status} {why}".strip(),
                         row_id=hashlib.sha256(f"{reference}\0fate".encode()).hexdigest()[:24])
        log.info("a guest's text message was not delivered",
                 extra={"meeting_id": meeting.id, "error_code": fate.error_code})
        sender.send(room_id=meeting.room_id, parent_id=meeting.thread or meeting.links_message,
                    markdown=replies.guest_text_failed(meeting.subject, sent.guest, shown, why))

    # Helpers

    def _audit(self, meeting: Meeting, actor: Actor, what: str, detail: str = "") -> None:
        self._book.audit(meeting, actor.email, actor.context.place.room_id, what, detail,
                         row_id=_row_id(actor.key, what, detail))

    def _device_names(self, uris: Sequence[str]) -> tuple[str, ...]:
        names = {device.sip_uri.lower(): device.name for device in self._config.device_catalog}
        return tuple(names.get(uri.lower(), uri) for uri in uris)


def _row_id(key: str, what: str, detail: str) -> str:
    """An audit row's id: the same for the same thing done by the same request, however often
    it is tried."""
    return hashlib.sha256(f"{key}\0{what}\0{detail}".encode()).hexdigest()[:24]


def _replaced(meeting: Meeting, guest: int, reference: str) -> bool:
    """Whether a newer message of the guest's link replaced the text ``reference`` names (a
    reminder's text is no delivery of the link: nothing replaces it)."""
    last = meeting.last_delivery(guest)
    return (any(d.reference == reference for d in meeting.deliveries)
            and (last is None or last.reference != reference))


def _in_its_space(meeting: Meeting, actor: Actor) -> Actor:
    """The actor answering in the space (and thread) where the meeting was made, where everyone
    saw its links, wherever the button was pressed."""
    place = replace(actor.context.place, room_id=meeting.room_id, group=meeting.group,
                    parent_id=meeting.thread)
    return Actor(actor.person, actor.context.at(place), actor.key)


_GUEST_EVENTS = {
    MessageKind.INVITATION: "guest link sent",
    MessageKind.UPDATE: "guest told of the new time",
    MessageKind.CANCELLATION: "guest told of the cancellation",
    MessageKind.REMINDER: "guest reminded",
}

