"""The conversation: what the bot does for each event, with no web framework in sight.

Messages: fetch the text, drop the mention, run the command ``COMMANDS`` names (help, form,
quick ``meet``, devices). Card submits: run what the button's data names in ``BUTTONS`` (the help
card's form button; the form's create: check the form, validate, create the meeting once per
form, post the links and retire the form). Being added to a space: introduce itself. This module
routes and decides; ``replies`` phrases, ``forms`` keeps the forms, and every refusal and failure
is told to the person in plain words with a reference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.conversation import replies
from bot.conversation.access import Gatekeeper
from bot.conversation.appointments import RECENT, Actor, Appointments
from bot.conversation.channels import GuestChannel
from bot.conversation.commands import Command, CommandTable, Entry, strip_mention
from bot.conversation.config import ConversationConfig
from bot.conversation.context import EventContext, Place
from bot.conversation.forms import Forms
from bot.conversation.guest_delivery import GuestDelivery
from bot.conversation.late_deliveries import GAPS, LateDeliveries, LateTry
from bot.conversation.meeting_list import status, summary
from bot.conversation.people import PeopleDirectory
from bot.conversation.plan import PlanContext, inputs_from_options, new_start, plan_from_inputs
from bot.conversation.reminders import Due, Reminders
from bot.conversation.timewindow import zone
from bot.errors import InvalidRequest, UpstreamError, is_retryable
from bot.events import (
    GUEST_DELIVERY_DUE,
    MEMBERSHIP,
    MESSAGE,
    REMINDER,
    SUBMIT,
    TEXT_STATUS,
    Event,
)
from bot.jobs.outbox import Outbox
from bot.jobs.runner import Attempt
from bot.jobs.storage import Fact, Store
from bot.meetings.book import MeetingBook
from bot.meetings.record import Fate, Meeting
from bot.upstream.instant_connect import Broker
from bot.upstream.webex import SERVICE as WEBEX_SERVICE
from bot.upstream.webex import AttachmentAction, Person, Webex
from cards import inputs as ids
from cards.form import meeting_form
from cards.help import help_card
from cards.inputs import MEETINGS_PER_PAGE
from cards.meetings import meetings_card

log = logging.getLogger(__name__)

# The store keys of the rate limit, both living for the MEETINGS_WINDOW setting: each person's
# requests, and each request's verdict (so a retried event is not counted twice).
RATE = Fact("rate", None)
RATE_VERDICT = Fact("rate-verdict", None)


@dataclass(frozen=True)
class Said:
    """A command someone sent: what ``COMMANDS`` hands its handler."""

    command: Command
    person: Person
    context: EventContext
    key: str  # the message id: a retried event creates its meeting once


@dataclass(frozen=True)
class Pressed:
    """A card button someone pressed: what ``BUTTONS`` hands its handler."""

    action: AttachmentAction
    person: Person
    context: EventContext
    form: Place | None  # where the card lives, when it is a meeting form the bot still knows


class Conversation:
    """Handles one event at a time; safe to call from several job threads."""

    def __init__(
        self,
        config: ConversationConfig,
        webex: Webex,
        meetings: Broker,
        store: Store,
        book: MeetingBook,
        *,
        channels: Sequence[GuestChannel] = (),
        clock: Callable[[], float] = time.time,
        late_gaps: Sequence[float] = GAPS,
    ) -> None:
        """``late_gaps``: the waits between the later tries of a guest's message (a test's or
        a demo's may be seconds)."""
        self._config = config
        self._webex = webex
        self._meetings = meetings
        self._store = store
        self._clock = clock
        self._people = PeopleDirectory(webex)
        self._gate = Gatekeeper(config.access, lambda: webex.me().org_id)
        self._forms = Forms(store, webex)
        self._outbox = Outbox(webex, store)
        self._channels = channels
        self._book = book
        later = LateDeliveries(store, clock=clock, gaps=late_gaps)
        self._appointments = Appointments(config, webex, meetings, book,
                                          GuestDelivery(channels, later, config.org_name),
                                          Reminders(store), clock=clock)
        self._handlers: dict[tuple[str, str], Callable[[Event, EventContext], None]] = {
            MESSAGE: self._on_message,
            SUBMIT: self._on_submit,
            MEMBERSHIP: self._on_membership,
            TEXT_STATUS: self._on_text_status,
            GUEST_DELIVERY_DUE: self._on_late_delivery,
            REMINDER: self._on_reminder,
        }

    def process(self, attempt: Attempt) -> None:
        """Do what a stored event calls for (the workers' entry)."""
        job = attempt.job
        event = Event.from_json(job.payload)
        handler = self._handlers.get(event.kind)
        if handler is None:
            return
        sender = self._outbox.for_event(event.data_id, retry=job.attempts > 1,
                                        since=job.accepted_at, last_attempt=attempt.last)
        # Until the message or submit is fetched, the webhook's room is where to apologise.
        context = EventContext(Place(event.room_id, event.data.get("roomType") != "direct"),
                               last_attempt=attempt.last, sender=sender)
        self._guarded(context, lambda: handler(event, context))

    # Work nobody is waiting on: a status callback, a later try, a reminder. Each belongs to no
    # space until its meeting is read, so a space that cannot be told is logged, not told.

    def _on_text_status(self, event: Event, context: EventContext) -> None:
        """What Twilio said of a guest's text message (the status callback)."""
        data = event.data
        fate = Fate(str(data["status"]), data.get("errorCode"))
        self._unattended(context, "could not tell a space that a guest's text was not delivered",
                         lambda: self._appointments.note_fate(str(data["sid"]), fate,
                                                              context.sender))

    def _on_late_delivery(self, event: Event, context: EventContext) -> None:
        """A later try at a guest's message (a due job the bot scheduled)."""
        self._unattended(context, "could not tell a space how a late guest message ended",
                         lambda: self._appointments.deliver_late(LateTry.from_event(event),
                                                                 context.sender))

    def _on_reminder(self, event: Event, context: EventContext) -> None:
        """A meeting's reminder at its moment (a scheduled job)."""
        self._unattended(context, "could not say a meeting's reminder",
                         lambda: self._appointments.remind(Due.of(event), context,
                                                           key=event.data_id))

    def _unattended(self, context: EventContext, failed: str, work: Callable[[], None]) -> None:
        """Run ``work``; a passing Webex failure tries the job again later, any other is
        logged as ``failed``."""
        try:
            work()
        except UpstreamError as error:
            if _worth_retrying_later(error) and not context.last_attempt:
                raise
            log.warning(failed, extra=error.log_fields())

    # Messages

    def _on_message(self, event: Event, context: EventContext) -> None:
        me = self._webex.me()
        if event.person_id == me.id:
            return  # the bot's own messages come back through its webhook
        message = self._webex.message(event.data_id)
        if message.person_id == me.id:
            return
        context = context.at(Place(message.room_id, message.room_type == "group",
                                   message.parent_id))
        person = self._people.get(message.person_id)
        if not self._admitted(person, context):
            return
        names = (me.display_name, me.display_name.split(" ")[0])
        command = COMMANDS.parse(strip_mention(message.html, message.text, me.id, names))
        log.info("command received", extra={"command": command.name,
                                            "room_id": context.place.room_id})
        said = Said(command, person, context, key=message.id)
        self._guarded(context, lambda: COMMANDS.handler(command.name)(self, said))

    # Commands: one handler each, listed in ``COMMANDS`` below the class

    def _form_command(self, said: Said) -> None:
        self._post_form(said.person, said.context)

    def _meet_command(self, said: Said) -> None:
        try:
            inputs = inputs_from_options(said.command.subject, said.command.options,
                                         self._config.device_catalog)
        except InvalidRequest as error:
            said.context.say(replies.problems(error.errors, replies.FIX_OPTIONS))
            return
        self._create(inputs, said.person, said.context, key=said.key, form_id=None)

    def _devices_command(self, said: Said) -> None:
        said.context.say(replies.devices(self._config.device_catalog))

    def _help_command(self, said: Said) -> None:
        self._post_help(said.context, replies.HELP)

    def _not_understood(self, said: Said) -> None:
        self._post_help(said.context, replies.NOT_UNDERSTOOD)

    # Card submits

    def _on_submit(self, event: Event, context: EventContext) -> None:
        action = self._webex.attachment_action(event.data_id)
        form_place = self._forms.place(action.message_id, action.room_id)
        context = context.at(form_place or Place(action.room_id, True))
        person = self._people.get(action.person_id)
        if not self._admitted(person, context):
            return
        # A forged submit may name no button or an unknown one: the form's checks answer it.
        handler = BUTTONS.get(str(action.inputs.get(ids.ACTION)), Conversation._create_pressed)
        handler(self, Pressed(action, person, context, form_place))

    # Buttons: one handler each, listed in ``BUTTONS`` below the class

    def _show_form_pressed(self, pressed: Pressed) -> None:
        self._guarded(pressed.context, lambda: self._post_form(pressed.person, pressed.context))

    def _create_pressed(self, pressed: Pressed) -> None:
        action, context = pressed.action, pressed.context
        if pressed.form is None:
            context.say(replies.FORM_GONE)
            return
        if self._forms.made_by_another(action.message_id, action.id):
            context.say(replies.ALREADY_CREATED)
            return
        self._guarded(context, lambda: self._create(
            action.inputs, pressed.person, context, key=action.id, form_id=action.message_id))

    def _create(
        self,
        inputs: Mapping[str, object],
        person: Person,
        context: EventContext,
        *,
        key: str,
        form_id: str | None,
    ) -> None:
        """Validate, create the meeting once, post the links, retire the form."""
        tz = zone(person.timezone, self._config.default_timezone)
        checks = PlanContext(
            catalog=self._config.device_catalog,
            tz=tz,
            now=datetime.fromtimestamp(self._clock(), UTC),
            group_space=context.place.group,
            default_valid_for=self._config.default_valid_for,
            channels=self._channels,
            phone_region=self._config.phone_region,
            guest_language=self._config.guest_language,
            remind_before=self._config.remind_before,
        )
        try:
            plan = plan_from_inputs(inputs, checks)
        except InvalidRequest as error:
            again = replies.FIX_FORM if form_id else replies.FIX_COMMAND
            context.say(replies.problems(error.errors, again))
            return
        if not self._within_rate_limit(person, context, key):
            return
        if form_id is not None and not self._forms.claim(form_id, key):
            context.say(replies.ALREADY_CREATED)
            return
        release = (lambda: self._forms.release(form_id)) if form_id is not None else (
            lambda: None)
        self._appointments.make(plan, Actor(person, context, key), tz, refused=release)
        if form_id is not None:
            self._forms.retire(form_id)

    # The meetings the bot remembers

    def _meetings_command(self, said: Said) -> None:
        self._show_meetings(said.person, said.context, page=1)

    def _meetings_page_pressed(self, pressed: Pressed) -> None:
        page = str(pressed.action.inputs.get(ids.PAGE, "1"))
        self._show_meetings(pressed.person, pressed.context,
                            page=int(page) if page.isdigit() and int(page) > 0 else 1)

    def _show_meetings(self, person: Person, context: EventContext, *, page: int) -> None:
        """A page of the person's meetings (in a group space: those made there)."""
        group, now = context.place.group, self._clock()
        tz = zone(person.timezone, self._config.default_timezone)
        wanted = page * MEETINGS_PER_PAGE + 1
        since = now - RECENT.total_seconds()
        found = (self._book.listed(room_id=context.place.room_id, since=since, limit=wanted)
                 if group else self._book.listed(person_id=person.id, since=since, limit=wanted))
        shown = found[(page - 1) * MEETINGS_PER_PAGE:page * MEETINGS_PER_PAGE]
        if not shown:
            context.say(replies.NO_MEETINGS_HERE if group else replies.NO_MEETINGS)
            return
        summaries = [
            summary(meeting, tz=tz, now=now, in_space=group,
                    privately=not group and meeting.maker_id == person.id,
                    can_act=meeting.maker_id == person.id
                    or (group and self._config.meeting_actions != "maker"))
            for meeting in shown]
        card = meetings_card(summaries, timezone_name=str(tz), in_space=group, page=page,
                             has_more=len(found) > page * MEETINGS_PER_PAGE)
        self._forms.record(context.post(replies.meetings_text(summaries), card), context.place)

    def _meeting_pressed(self, pressed: Pressed, *, must_be_on: bool = True) -> Meeting | None:
        """The meeting a button acts on, when it exists, the person may act on it and (with
        ``must_be_on``) it is neither over nor cancelled, unless by this very press."""
        meeting_id = str(pressed.action.inputs.get(ids.MEETING, ""))
        meeting = self._book.get(meeting_id) if meeting_id else None
        if meeting is None:
            pressed.context.say(replies.MEETING_GONE)
            return None
        if not self._appointments.may_act(pressed.person, meeting):
            log.warning("refused an action on another's meeting",
                        extra={"person_id": pressed.person.id,
                               "room_id": pressed.context.place.room_id})
            pressed.context.say(replies.NOT_YOURS)
            return None
        if (must_be_on and meeting.revision != pressed.action.id
                and not status(meeting, self._clock()).actionable):
            pressed.context.say(replies.OVER)
            return None
        return meeting

    def _actor(self, pressed: Pressed) -> Actor:
        return Actor(pressed.person, pressed.context, pressed.action.id)

    def _host_links_pressed(self, pressed: Pressed) -> None:
        if (meeting := self._meeting_pressed(pressed, must_be_on=False)) is not None:
            self._appointments.send_host_links(meeting, self._actor(pressed))

    def _resend_pressed(self, pressed: Pressed) -> None:
        if (meeting := self._meeting_pressed(pressed)) is not None:
            self._appointments.resend(meeting, self._actor(pressed))

    def _change_pressed(self, pressed: Pressed) -> None:
        meeting = self._meeting_pressed(pressed)
        if meeting is None:
            return
        tz = zone(pressed.person.timezone, self._config.default_timezone)
        try:
            start = new_start(pressed.action.inputs, meeting.id, tz,
                              datetime.fromtimestamp(self._clock(), UTC))
        except InvalidRequest as error:
            pressed.context.say(replies.problems(error.errors, replies.FIX_NEW_TIME))
            return
        self._appointments.change(meeting, start, self._actor(pressed))

    def _cancel_pressed(self, pressed: Pressed) -> None:
        if (meeting := self._meeting_pressed(pressed)) is not None:
            self._appointments.cancel(meeting, self._actor(pressed))

    # Membership

    def _on_membership(self, event: Event, context: EventContext) -> None:
        if event.person_id != self._webex.me().id:
            return
        self._post_help(context, replies.WELCOME)

    # Helpers

    def _admitted(self, person: Person, context: EventContext) -> bool:
        if self._gate.allows(person):
            return True
        log.warning("refused a person", extra={"person_id": person.id,
                                               "room_id": context.place.room_id,
                                               "person_type": person.type})
        if person.type != "bot":  # answering another bot could start an endless exchange
            context.say(replies.NOT_ALLOWED)
        return False

    def _within_rate_limit(self, person: Person, context: EventContext, key: str) -> bool:
        """Count the request ``key`` once: a retried event keeps its first try's verdict, so a
        meeting made on a try whose replies then failed is not refused on the retry."""
        window = self._config.meetings_window
        verdict = self._store.get(RATE_VERDICT.key(key))
        if verdict is None:
            count = self._store.hit(RATE.key(person.id), window.total_seconds())
            verdict = "within" if count <= self._config.meetings_per_person else "over"
            self._store.set(RATE_VERDICT.key(key), verdict, window.total_seconds())
        if verdict == "within":
            return True
        context.say(replies.rate_limited(self._config.meetings_per_person, window))
        return False

    def _post_form(self, person: Person, context: EventContext) -> None:
        tz_name = str(zone(person.timezone, self._config.default_timezone))
        card = meeting_form(self._config.device_catalog, group_space=context.place.group,
                            timezone_name=tz_name,
                            channels=[channel.way for channel in self._channels if channel.ready],
                            valid_for=self._config.default_valid_for,
                            guest_language=self._config.guest_language,
                            remind_before=self._config.remind_before)
        self._forms.record(context.post(replies.FORM, card), context.place)

    def _post_help(self, context: EventContext, intro: str) -> None:
        commands = COMMANDS.help_lines()
        card = help_card(bot_name=self._webex.me().display_name, commands=commands)
        context.post(replies.help_text(intro, commands), card)

    def _guarded(self, context: EventContext, work: Callable[[], None]) -> None:
        """Run ``work``; tell the person about an upstream failure instead of going silent."""
        try:
            work()
        except InvalidRequest as error:
            context.say(replies.problems(error.errors, replies.NOT_CREATED))
        except UpstreamError as error:
            if _worth_retrying_later(error) and not context.last_attempt:
                raise  # Webex itself is struggling: the worker tries the whole event again soon
            log.warning("upstream failure told to the person", extra=error.log_fields())
            context.say(replies.upstream_failure(error))


# What people can type: the help lists the entries in this order, the first word names each.
COMMANDS: CommandTable[Callable[[Conversation, Said], None]] = CommandTable([
    Entry(("meet",), "meet <subject>",
          "links at once, e.g. meet Patient follow-up guests=2 valid=4h",
          Conversation._meet_command, takes_subject=True),
    Entry(("form", "new", "meeting"), "new", "the meeting form, with every option",
          Conversation._form_command),
    Entry(("meetings", "list"), "meetings",
          "your meetings: send their links again, change the time, cancel",
          Conversation._meetings_command),
    Entry(("devices", "device"), "devices", "the video devices I can dial in",
          Conversation._devices_command),
    Entry(("help", "?", "hi", "hello", "start"), "help", "this help",
          Conversation._help_command),
], unknown=Conversation._not_understood)

# What the cards' buttons ask for, by their ``Action.Submit`` data (``cards.inputs.ACTION``).
BUTTONS: Mapping[str, Callable[[Conversation, Pressed], None]] = {
    ids.ACTION_SHOW_FORM: Conversation._show_form_pressed,
    ids.ACTION_CREATE: Conversation._create_pressed,
    ids.ACTION_LIST_MEETINGS: Conversation._meetings_page_pressed,
    ids.ACTION_SEND_HOST_LINKS: Conversation._host_links_pressed,
    ids.ACTION_RESEND_GUEST_LINKS: Conversation._resend_pressed,
    ids.ACTION_CHANGE_TIME: Conversation._change_pressed,
    ids.ACTION_CANCEL_MEETING: Conversation._cancel_pressed,
}


def _worth_retrying_later(error: UpstreamError) -> bool:
    """A transient Webex failure: the reply could not get through either, so retry the event."""
    return error.service == WEBEX_SERVICE and is_retryable(error)
