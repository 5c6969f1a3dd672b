"""The conversation: what the bot says and does for each event, with no web framework in sight.

Messages: fetch the text, drop the mention, route the command (help, form, quick ``meet``,
devices). Card submits: fetch the inputs, check the person and the form, validate, create the
meeting once per form, post the links and retire the form. Being added to a space: introduce
itself. Every refusal and failure is told to the person in plain words with a reference.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from bot.conversation.access import Gatekeeper
from bot.conversation.commands import Command, parse, strip_mention
from bot.conversation.link_messages import compose, escape_markdown
from bot.conversation.people import PeopleDirectory
from bot.conversation.plan import MeetingPlan, PlanContext, inputs_from_options, plan_from_inputs
from bot.conversation.timewindow import describe_window, zone
from bot.errors import (
    BotError,
    FieldError,
    InvalidRequest,
    Rejected,
    UpstreamError,
    is_retryable,
)
from bot.events import Event
from bot.jobs.outbox import Outbox
from bot.jobs.storage import Job, Store
from bot.settings import Settings
from bot.upstream.instant_connect import InstantConnectClient, MeetingLinks
from bot.upstream.webex import SERVICE as WEBEX_SERVICE
from bot.upstream.webex import Person, WebexClient
from cards import inputs as ids
from cards.form import meeting_form
from cards.help import help_card

log = logging.getLogger(__name__)

FORM_TTL = timedelta(days=14).total_seconds()
PROBLEMS_BUDGET = 4000  # bytes of a "please fix" reply; Webex refuses messages over 7439
COMMANDS = (
    ("meet <subject>", "links at once, e.g. meet Patient follow-up guests=2 valid=4h"),
    ("new", "the meeting form, with every option"),
    ("devices", "the video devices I can dial in"),
    ("help", "this help"),
)


@dataclass(frozen=True)
class Place:
    """Where a reply goes: the space, and the thread when the person wrote in one."""

    room_id: str
    group: bool
    parent_id: str | None = None


class Conversation:
    """Handles one event at a time; safe to call from several worker threads."""

    def __init__(
        self,
        settings: Settings,
        webex: WebexClient,
        meetings: InstantConnectClient,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._webex = webex
        self._meetings = meetings
        self._store = store
        self._clock = clock
        self._people = PeopleDirectory(webex)
        self._gate = Gatekeeper(settings.access, lambda: webex.me().org_id)
        self._last_attempt = threading.local()
        self._outbox = Outbox(webex, store)

    def process(self, job: Job) -> None:
        """Do what a stored event calls for, on its ``job.attempts``-th try (the workers' entry)."""
        event = Event.from_json(job.payload)
        handlers = {
            "messages": self._on_message,
            "attachmentActions": self._on_submit,
            "memberships": self._on_membership,
        }
        handler = handlers.get(event.resource)
        if handler is not None and event.event == "created":
            # Until the message or submit is fetched, the webhook's room is where to apologise.
            fallback = Place(event.room_id, event.data.get("roomType") != "direct")
            self._last_attempt.value = job.attempts >= self._settings.max_attempts
            retry = job.attempts > 1
            with self._outbox.for_event(event.data_id, retry=retry, since=job.accepted_at):
                self._guarded(fallback, lambda: handler(event))

    # Messages

    def _on_message(self, event: Event) -> None:
        me = self._webex.me()
        if event.person_id == me.id:
            return  # the bot's own messages come back through its webhook
        message = self._webex.message(event.data_id)
        if message.person_id == me.id:
            return
        place = Place(message.room_id, message.room_type == "group", message.parent_id)
        person = self._people.get(message.person_id)
        if not self._admitted(person, place):
            return
        names = (me.display_name, me.display_name.split(" ")[0])
        command = parse(strip_mention(message.html, message.text, me.id, names))
        log.info("command received", extra={"command": command.name, "room_id": place.room_id})
        self._guarded(place, lambda: self._run(command, person, place, key=message.id))

    def _run(self, command: Command, person: Person, place: Place, *, key: str) -> None:
        if command.name == "form":
            self._post_form(person, place)
        elif command.name == "meet":
            self._quick_meeting(command, person, place, key)
        elif command.name == "devices":
            self._say(place, self._devices_text())
        elif command.name == "help":
            self._post_help(place, "Here is what I can do:")
        else:
            self._post_help(place, "I did not catch that. Here is what I can do:")

    def _quick_meeting(self, command: Command, person: Person, place: Place, key: str) -> None:
        catalog = self._settings.device_catalog
        inputs = inputs_from_options(command.subject, command.options, catalog)
        if isinstance(inputs, list):
            self._say(place, _problems_text(inputs, "Please fix the options and try again:"))
            return
        self._create(inputs, person, place, key=key, form_id=None)

    # Card submits

    def _on_submit(self, event: Event) -> None:
        action = self._webex.attachment_action(event.data_id)
        form = self._form_record(action.message_id)
        place = Place(action.room_id, form.get("group", True), form.get("thread")) if form \
            else Place(action.room_id, True)
        person = self._people.get(action.person_id)
        if not self._admitted(person, place):
            return
        if action.inputs.get(ids.ACTION) == ids.ACTION_SHOW_FORM:
            self._guarded(place, lambda: self._post_form(person, place))
            return
        if form is None or form.get("room") != action.room_id:
            self._say(place, "This form is no longer active here. Mention me with **new** for "
                             "a fresh one.")
            return
        owner = self._store.get(_meeting_key(action.message_id))
        if owner is not None and owner != action.id:
            self._say(place, "These meeting links were already created from this form. "
                             "Mention me with **new** for another meeting.")
            return
        self._guarded(place, lambda: self._create(
            action.inputs, person, place, key=action.id, form_id=action.message_id))

    def _create(
        self,
        inputs: Mapping[str, object],
        person: Person,
        place: Place,
        *,
        key: str,
        form_id: str | None,
    ) -> None:
        """Validate, create the meeting once, post the links, retire the form."""
        tz = zone(person.timezone, self._settings.default_timezone)
        context = PlanContext(
            catalog=self._settings.device_catalog,
            tz=tz,
            now=datetime.fromtimestamp(self._clock(), UTC),
            group_space=place.group,
            default_valid_for=self._settings.default_valid_for,
        )
        plan = plan_from_inputs(inputs, context)
        if isinstance(plan, list):
            again = "submit the form again" if form_id else "send the command again"
            self._say(place, _problems_text(plan, f"Please fix these and {again}:"))
            return
        if not self._within_rate_limit(person, place):
            return
        if form_id is not None:
            owner = self._store.put_if_absent(_meeting_key(form_id), key, FORM_TTL)
            if owner is not None and owner != key:
                self._say(place, "These meeting links were already created from this form.")
                return
        try:
            links = self._meetings.create_links(plan.request(key, self._clock()))
        except BotError:
            if form_id is not None:
                self._store.delete(_meeting_key(form_id))  # let the person try the form again
            raise
        log.info("meeting created", extra={"links": len(links.all), "room_id": place.room_id})
        self._deliver_links(plan, links, person, place, tz)
        if form_id is not None:
            self._retire_form(form_id)

    def _deliver_links(
        self, plan: MeetingPlan, links: MeetingLinks, person: Person, place: Place, tz: tzinfo
    ) -> None:
        window = describe_window(links.nbf, links.exp, tz)
        devices = self._device_names(plan.devices)
        if plan.private_host_links and links.hosts:
            for message in compose(plan.subject, window, devices, links.hosts, "Host links",
                                   notes=plan.notices):
                self._outbox.send(to_person_id=person.id, markdown=message.markdown,
                                 card=message.card)
            guests = links.guests
            note = f"Host links were sent privately to {person.display_name or 'you'}."
            self._say(place, f"Meeting **{escape_markdown(plan.subject)}** is ready. {note}")
        else:
            guests = links.all
        for message in compose(plan.subject, window, devices, guests, "Meeting links",
                               notes=plan.notices):
            self._outbox.send(room_id=place.room_id, parent_id=place.parent_id,
                             markdown=message.markdown, card=message.card)

    def _retire_form(self, form_id: str) -> None:
        """Remove the used form so nobody presses it again; gone already is fine."""
        try:
            self._webex.delete_message(form_id)
        except Rejected as error:
            if error.status != 404:
                raise

    # Membership

    def _on_membership(self, event: Event) -> None:
        if event.person_id != self._webex.me().id:
            return
        place = Place(event.room_id, event.data.get("roomType") != "direct")
        self._post_help(place, "Hello! I make Webex Instant Connect meeting links for people "
                               "outside your organisation.")

    # Helpers

    def _admitted(self, person: Person, place: Place) -> bool:
        if self._gate.allows(person):
            return True
        log.warning("refused a person", extra={"person_id": person.id, "room_id": place.room_id,
                                               "person_type": person.type})
        if person.type != "bot":  # answering another bot could start an endless exchange
            self._say(place, "Sorry, I can only make meetings for people my administrator has "
                             "allowed. Please ask them if you need access.")
        return False

    def _within_rate_limit(self, person: Person, place: Place) -> bool:
        window = self._settings.meetings_window.total_seconds()
        count = self._store.hit(f"rate:{person.id}", window)
        if count <= self._settings.meetings_per_person:
            return True
        minutes = round(window / 60)
        self._say(place, f"You have created {self._settings.meetings_per_person} meetings in the "
                         f"last {minutes} minutes, which is the limit. Please try again later.")
        return False

    def _post_form(self, person: Person, place: Place) -> None:
        tz_name = str(zone(person.timezone, self._settings.default_timezone))
        card = meeting_form(self._settings.device_catalog, group_space=place.group,
                            timezone_name=tz_name)
        form_id = self._outbox.send(
            room_id=place.room_id, parent_id=place.parent_id, card=card,
            markdown="Fill in the meeting form to get Instant Connect links. (Your Webex app "
                     "cannot show cards? Use: meet <subject>)",
        )
        record = {"room": place.room_id, "group": place.group, "thread": place.parent_id}
        self._store.set(_form_key(form_id), json.dumps(record), FORM_TTL)

    def _post_help(self, place: Place, intro: str) -> None:
        lines = [intro, *(f"- **{cmd}**: {what}" for cmd, what in COMMANDS)]
        self._outbox.send(
            room_id=place.room_id, parent_id=place.parent_id, markdown="\n".join(lines),
            card=help_card(bot_name=self._webex.me().display_name, commands=COMMANDS),
        )

    def _devices_text(self) -> str:
        catalog = self._settings.device_catalog
        if not catalog:
            return ("No devices are configured. You can still dial any device in with "
                    "device=room@example.com, or in the form's "
                    f"\"{ids.LABELS[ids.EXTRA_DEVICES]}\".")
        lines = ["Devices I can dial in (use device=<name> with meet, or pick them in the form):"]
        lines += [f"- **{escape_markdown(d.name)}**: {d.sip_uri}" for d in catalog]
        return "\n".join(lines)

    def _device_names(self, uris: tuple[str, ...]) -> list[str]:
        names = {device.sip_uri.lower(): device.name for device in self._settings.device_catalog}
        return [names.get(uri.lower(), uri) for uri in uris]

    def _form_record(self, message_id: str) -> dict | None:
        raw = self._store.get(_form_key(message_id))
        return json.loads(raw) if raw else None

    def _say(self, place: Place, markdown: str) -> None:
        self._outbox.send(room_id=place.room_id, parent_id=place.parent_id, markdown=markdown)

    def _guarded(self, place: Place, work: Callable[[], None]) -> None:
        """Run ``work``; tell the person about an upstream failure instead of going silent."""
        try:
            work()
        except InvalidRequest as error:
            self._say(place, _problems_text(error.errors, "The meeting could not be created:"))
        except UpstreamError as error:
            if _worth_retrying_later(error) and not getattr(self._last_attempt, "value", True):
                raise  # Webex itself is struggling: the worker tries the whole event again soon
            log.warning("upstream failure told to the person", extra={
                "service": error.service, "status": error.status,
                "tracking_id": error.tracking_id, "error_type": type(error).__name__})
            self._say(place, f"Sorry, I could not finish that. {error.describe()}")


def _worth_retrying_later(error: UpstreamError) -> bool:
    """A transient Webex failure: the reply could not get through either, so retry the event."""
    return error.service == WEBEX_SERVICE and is_retryable(error)


def _problems_text(errors: list[FieldError], intro: str) -> str:
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


def _form_key(message_id: str) -> str:
    return f"form:{message_id}"


def _meeting_key(message_id: str) -> str:
    return f"meeting:{message_id}"
