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
from datetime import UTC, datetime, tzinfo

from bot.conversation import replies
from bot.conversation.access import Gatekeeper
from bot.conversation.channels import GuestChannel
from bot.conversation.commands import Command, CommandTable, Entry, strip_mention
from bot.conversation.config import ConversationConfig
from bot.conversation.context import EventContext, Place
from bot.conversation.forms import Forms
from bot.conversation.guest_delivery import GuestDelivery
from bot.conversation.link_messages import compose
from bot.conversation.people import PeopleDirectory
from bot.conversation.plan import MeetingPlan, PlanContext, inputs_from_options, plan_from_inputs
from bot.conversation.timewindow import describe_window, zone
from bot.errors import BotError, InvalidRequest, UpstreamError, is_retryable
from bot.events import MEMBERSHIP, MESSAGE, SUBMIT, Event
from bot.jobs.outbox import Outbox
from bot.jobs.runner import Attempt
from bot.jobs.storage import Fact, Store
from bot.upstream.instant_connect import Broker, MeetingLinks
from bot.upstream.webex import SERVICE as WEBEX_SERVICE
from bot.upstream.webex import AttachmentAction, Person, Webex
from cards import inputs as ids
from cards.form import meeting_form
from cards.help import help_card

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
        *,
        channels: Sequence[GuestChannel] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
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
        self._guests = GuestDelivery(channels, config.org_name)
        self._handlers: dict[tuple[str, str], Callable[[Event, EventContext], None]] = {
            MESSAGE: self._on_message,
            SUBMIT: self._on_submit,
            MEMBERSHIP: self._on_membership,
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
        try:
            links = self._meetings.create_links(plan.request(key, self._clock()))
        except BotError:
            if form_id is not None:
                self._forms.release(form_id)  # let the person try the form again
            raise
        log.info("meeting created", extra={"links": len(links.all),
                                           "room_id": context.place.room_id})
        self._deliver_links(plan, links, person, context, tz)
        if plan.contacts:
            self._guests.deliver(plan, links, person, context, tz)
        if form_id is not None:
            self._forms.retire(form_id)

    def _deliver_links(
        self, plan: MeetingPlan, links: MeetingLinks, person: Person, context: EventContext,
        tz: tzinfo,
    ) -> None:
        """Post the links in the space (host links privately when asked)."""
        window = describe_window(links.nbf, links.exp, tz)
        devices = self._device_names(plan.devices)
        if plan.private_host_links and links.hosts:
            for message in compose(plan.subject, window, devices, links.hosts, "Host links",
                                   notes=plan.notices):
                context.tell(person.id, message.markdown, message.card)
            guests = links.guests
            context.say(replies.ready(plan.subject, person.display_name))
        else:
            guests = links.all
        for message in compose(plan.subject, window, devices, guests, "Meeting links",
                               notes=plan.notices):
            context.post(message.markdown, message.card)

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
                            valid_for=self._config.default_valid_for)
        self._forms.record(context.post(replies.FORM, card), context.place)

    def _post_help(self, context: EventContext, intro: str) -> None:
        commands = COMMANDS.help_lines()
        card = help_card(bot_name=self._webex.me().display_name, commands=commands)
        context.post(replies.help_text(intro, commands), card)

    def _device_names(self, uris: tuple[str, ...]) -> list[str]:
        names = {device.sip_uri.lower(): device.name for device in self._config.device_catalog}
        return [names.get(uri.lower(), uri) for uri in uris]

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
    Entry(("devices", "device"), "devices", "the video devices I can dial in",
          Conversation._devices_command),
    Entry(("help", "?", "hi", "hello", "start"), "help", "this help",
          Conversation._help_command),
], unknown=Conversation._not_understood)

# What the cards' buttons ask for, by their ``Action.Submit`` data (``cards.inputs.ACTION``).
BUTTONS: Mapping[str, Callable[[Conversation, Pressed], None]] = {
    ids.ACTION_SHOW_FORM: Conversation._show_form_pressed,
    ids.ACTION_CREATE: Conversation._create_pressed,
}


def _worth_retrying_later(error: UpstreamError) -> bool:
    """A transient Webex failure: the reply could not get through either, so retry the event."""
    return error.service == WEBEX_SERVICE and is_retryable(error)
