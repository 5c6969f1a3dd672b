"""``python -m bot demo``: a whole conversation, offline, through real signed webhooks.

It starts the sandbox (a local Webex and Instant Connect broker) and the bot, registers the bot's
webhooks with ``webhooks sync`` (or, with ``--events websocket``, lets the bot open its websocket
as it does without a public URL: no webhook, no web server). The clinic's organisation is
hosted in Webex's EU cluster, whose ids are not the US ones every example shows (over the
websocket the bot has to work them out). It then plays a 1:1 ``help``, being
added to a group space, a mention that gets the form, a submit with two devices, private host
links and a guest reached by email and SMS (through the sandbox's SMTP relay and Twilio), a
second press of the same form; then the person lists her meetings, moves this one and cancels
it, and the guest is told each time (her calendar event moves, then is cancelled). Last, a
meeting for a guest who reads Spanish, starting in a little over a minute with a reminder a
minute before: the demo waits the few seconds until her reminder arrives, and (over webhooks,
where the bot has a web server Twilio can call) Twilio reports her reminder text delivered to
the bot's status callback. It prints who said
what and what the guests received, so a newcomer sees the bot work without any account;
``mail_dir`` keeps every email as an ``.eml`` file a mail client opens.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import functools
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import icalendar

from bot.devtools.in_process import sandbox_guest_channels, serve_locally
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.sms import SentSms
from bot.limits import DEFAULT_DURATION, DEFAULT_VALID_FOR
from bot.listen.listener import ListenConfig
from bot.meetings.sealing import Keyring, new_key
from bot.secret import Secret
from bot.service import BotService
from bot.settings import Settings
from bot.upstream.instant_connect.config import InstantConnectConfig
from bot.upstream.retry import RetryPolicy
from bot.upstream.webex import WebexClient
from bot.upstream.webhook_sync import sync
from bot.web.sms_status import SMS_STATUS_PATH
from cards import inputs as ids
from cards.inputs import LABELS, CatalogDevice

ZONE = "Europe/Paris"  # the clinic's, and Alice's
ZOE_EMAIL = "zoe@example.org"
ZOE_MOBILE = "+33 6 12 34 56 78"
LUCIA_EMAIL = "lucia@example.es"
LUCIA_MOBILE = "+34612345678"
PUBLIC_URL = "https://bot.clinique-du-parc.example"  # where the demo's Twilio reports a text's fate
REMINDER_IN = 4  # seconds from the quick request to Lucía's reminder: time enough to make it
CATALOG = (
    CatalogDevice("Exam Room 1", "exam-room-1@clinic.example.com"),
    CatalogDevice("Cart 7", "cart-7@clinic.example.com"),
)


class Transcript:
    """Prints the conversation: people's words, and whatever the bot posted since last time."""

    def __init__(self, box: Sandbox, service: BotService, out: TextIO) -> None:
        self._box = box
        self._service = service
        self._out = out
        self._seen: set[str] = set()
        self._rooms: dict[str, str] = {}
        self._delivered = (0, 0)  # emails and text messages shown so far

    def room(self, room: dict[str, Any], label: str) -> None:
        """Name a space for the transcript."""
        self._rooms[room["id"]] = label

    def say(self, text: str) -> None:
        """A line of narration or of a person."""
        print(text, file=self._out)

    def prompt(self, text: str) -> None:
        """A question to the person, answered on the same line."""
        print(text, end="", file=self._out, flush=True)

    def act(self, narration: str, action: Callable[[], object]) -> None:
        """Do what a person does, wait until the bot has handled it, print the bot's replies."""
        if narration:
            self.say(narration)
        action()
        if self._service.listener is not None:  # stored once the frame is acknowledged
            self._box.wait_for(self._box.mercury_settled, timeout=30)
        if not self._service.wait_until_idle(timeout=30):
            raise RuntimeError("the bot did not finish in time")
        for room_id, label in self._rooms.items():
            for message in self._box.messages_in(room_id):
                if message["personId"] == self._box.bot["id"] and message["id"] not in self._seen:
                    self._seen.add(message["id"])
                    self._print_bot(label, message)

    def guest_received(self, name: str | None = None) -> None:
        """What the guests (``name``, when one) found in their inbox and on their phone since
        last time."""
        box = self._box
        mails, texts = box.mail(), box.sms()
        shown_mails, shown_texts = self._delivered
        self._delivered = (len(mails), len(texts))
        if len(mails) == shown_mails and len(texts) == shown_texts:
            return
        self.say(f"\nWhat {name or 'the guests'} received:")
        inbox, phone = (f"{name}'s inbox", f"{name}'s phone") if name else ("Inbox", "Phone")
        for mail in mails[shown_mails:]:
            parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            text = parsed.get_body(("plain",))
            lines = text.get_content().splitlines() if text is not None else []
            self.say(f"  {inbox} ({mail.rcpt_tos[0]}): {parsed['Subject']}")
            self.say(f"      From: {parsed['From'].addresses[0].display_name} "
                     f"(Content-Language: {parsed['Content-Language']})")
            for line in filter(None, lines[2:4]):  # when, and the link unless cancelled
                self.say(f"      {line}")
            attached = ", ".join(map(_attachment, parsed.iter_attachments()))
            self.say(f"      Attached: {attached}")
        for sms in texts[shown_texts:]:
            self.say(f"  {phone} ({sms.to}): {sms.body}")

    def _print_bot(self, label: str, message: dict[str, Any]) -> None:
        lines = (message.get("markdown") or message.get("text") or "").splitlines()
        where = f"{label}, replying in a thread" if message.get("parentId") else label
        self.say(f"  Bot in {where}: {lines[0] if lines else ''}")
        for line in lines[1:]:
            self.say(f"      {line}")
        for attachment in message.get("attachments") or []:
            self.say(f"      [card: {card_summary(attachment['content'])}]")


def _attachment(part: EmailMessage) -> str:
    """An email's attachment as a guest's mail client takes it: a calendar part by its iTIP
    method and sequence (how the client knows to add, move or cancel the event)."""
    name = str(part.get_filename())
    if part.get_content_type() != "text/calendar":
        return f"{name} (QR code)" if part.get_content_type() == "image/png" else name
    calendar = icalendar.Calendar.from_ical(part.get_content())
    event = calendar.walk("VEVENT")[0]
    return f"{name} (calendar: METHOD:{calendar['METHOD']}, SEQUENCE:{event['SEQUENCE']})"


def card_summary(card: dict[str, Any]) -> str:
    """A card in one line: its inputs and its buttons, in order, with what each button that
    opens a card in place shows."""
    fields, actions = _parts(card)
    buttons = [f"'{action.get('title', '')}'" + (
        f" (opens {card_summary(action['card'])})" if action["type"] == "Action.ShowCard" else "")
        for action in actions]
    parts = []
    if fields:
        parts.append("fields " + ", ".join(
            str(field.get("label") or field.get("title") or field["id"]) for field in fields))
    if buttons:
        parts.append(("buttons " if len(buttons) > 1 else "button ") + ", ".join(buttons))
    return "; ".join(parts) or "no inputs"


def _parts(card: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A card's inputs and buttons, in order, without those of the cards its buttons open."""
    fields: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            kind = str(node.get("type", ""))
            if kind.startswith("Input."):
                fields.append(node)
            elif kind.startswith("Action."):
                actions.append(node)
            else:
                for value in node.values():
                    walk(value)

    walk([card.get("body", []), card.get("actions", [])])
    return fields, actions


def run_demo(
    out: TextIO, interactive_input: TextIO | None = None, mail_dir: Path | None = None,
    events: str = "webhooks",
) -> int:
    """Play the conversation (or let a person type it) and print it; 0 when all went well."""
    with _offline_bot(out, events) as (box, show):
        if interactive_input is None:
            _play(box, show, CHANNELS[events])
        else:
            _converse(box, show, interactive_input)
        if mail_dir is not None:
            _keep_mail(box, show, mail_dir)
    return 0


def _keep_mail(box: Sandbox, show: Transcript, folder: Path) -> None:
    """Every email the sandbox's relay received, as NN-guest.eml files."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, mail in enumerate(box.mail(), start=1):
        path = folder / f"{number:02d}-{mail.rcpt_tos[0].partition('@')[0]}.eml"
        path.write_bytes(mail.data)
        show.say(f"Saved {path}")


@contextlib.contextmanager
def _offline_bot(out: TextIO, events: str) -> Iterator[tuple[Sandbox, Transcript]]:
    """The sandbox and the bot, wired as in a real deployment: through ``webhooks sync``, or
    the bot's own websocket."""
    secret = secrets.token_hex(16)
    with Sandbox(seed=2026, cluster="eu") as box, tempfile.TemporaryDirectory() as folder:
        channels = sandbox_guest_channels(box)
        public = events == "webhooks"  # a public URL Twilio reports to: the web server's
        if public:
            channels["sms"] = replace(channels["sms"],
                                      status_callback=PUBLIC_URL + SMS_STATUS_PATH)
        settings = Settings(
            bot_token=Secret(box.bot_token),
            webex_base_url=box.webex_base_url,
            instant_connect=InstantConnectConfig(broker_url=box.broker_url),
            webhook_secret=Secret(secret),
            meeting_keys=Keyring.parse(new_key()),  # for this run alone, as its store
            events=events,
            listen=ListenConfig(u2c_url=box.u2c_url),
            storage_url=f"sqlite:///{folder}/demo.sqlite3",
            device_catalog=CATALOG,
            default_timezone=ZONE,
            org_name="Clinique du Parc",
            retry=RetryPolicy(max_attempts=2, max_wait=1.0),
            public_url=PUBLIC_URL if public else None,
            **channels,
        )
        if settings.websocket:
            with _listening(settings) as service:
                yield box, Transcript(box, service, out)
            return
        with serve_locally(settings) as local:
            webex = WebexClient(settings.bot_token, settings.webex_base_url)
            sync(webex, local.webhook_url, Secret(secret))
            box.twilio_status_plan()  # no report but those the demo plays
            box.twilio_route(PUBLIC_URL, local.webhook_url.removesuffix(settings.webhook_path))
            yield box, Transcript(box, local.service, out)


@contextlib.contextmanager
def _listening(settings: Settings) -> Iterator[BotService]:
    """The bot as ``python -m bot listen`` runs it: workers and the websocket, no web server."""
    service = BotService(settings)
    service.start()
    try:
        assert service.listener is not None
        if not service.listener.wait_until_connected(timeout=30):
            raise RuntimeError("the bot could not open its websocket to the sandbox")
        yield service
    finally:
        service.stop()


CHANNELS = {"webhooks": "real signed webhooks", "websocket": "the bot's websocket"}
"""How each step reaches the bot, as the transcript says it."""


def _play(box: Sandbox, show: Transcript, channel: str) -> None:
    alice = box.add_person("alice@clinic.example.com", "Alice Martin", timezone=ZONE)
    bob = box.add_person("bob@clinic.example.com", "Bob Chen")
    dm = box.direct_room(alice)
    show.room(dm, "1:1 with Alice")
    show.say("Offline demo: a local Webex, Instant Connect broker, mail relay and SMS service, "
             f"and the bot, talking over {channel}. The clinic's spaces are hosted in Webex's "
             f"EU cluster: their ids name {_cluster(dm['id'])}.\n")
    show.act("Alice (1:1): help", lambda: box.post_message(alice, dm, "help"))

    clinic = box.add_room("Clinic", members=[alice, bob])
    show.room(clinic, "Clinic")
    show.act("\nAlice adds the bot to the space 'Clinic'",
             lambda: box.add_bot_to_room(clinic, by=alice))
    show.act("\nAlice (Clinic): @Instant Connect new",
             lambda: box.post_message(alice, clinic, "new", mention_bot=True))
    form = _latest_card(box, clinic, ids.ACTION_CREATE)
    day = tomorrow()
    inputs = {
        ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Patient follow-up", ids.HOSTS: "1",
        ids.GUESTS: "2", ids.DEVICES: ",".join(d.sip_uri for d in CATALOG),
        ids.SHORT_LINKS: "true", ids.VERTICAL: "hc", ids.HOST_LOGIN: "true",
        ids.START_DATE: day.isoformat(), ids.START_TIME: "09:00", ids.DURATION: "30m",
        ids.VALID_FOR: "2h", ids.PRIVATE_HOST_LINKS: "true",
        ids.GUEST_CONTACTS: f"{ZOE_EMAIL}, {ZOE_MOBILE}",
        ids.GUEST_NOTE: "Please have your medication list at hand.",
    }
    show.act(f"\nAlice fills the form: 'Patient follow-up', 1 host, 2 guests, dial in Exam Room 1 "
             f"and Cart 7, {day} at 09:00 for 30 minutes (links valid 2 hours), host links "
             f"privately, guest links to Zoë by email and SMS",
             lambda: box.submit_card(alice, form["id"], inputs))
    show.guest_received("Zoë")
    show.act("\nBob presses 'Create meeting links' on the same form again",
             lambda: box.submit_card(bob, form["id"], inputs))
    _move_then_cancel(box, show, alice, dm, day + timedelta(days=1))
    _remind(box, show, alice, dm)
    show.say(f"\nEvery step above went through {channel}, the bot's durable queue, and "
             "the local Webex, broker, SMTP relay and Twilio.")


def _move_then_cancel(box: Sandbox, show: Transcript, alice: dict[str, Any],
                      dm: dict[str, Any], new_day: date) -> None:
    """Alice lists her meetings, moves the one with Zoë to ``new_day``, lists them again and
    cancels it; what Zoë received after each."""
    show.say("\nPlans change: Alice moves the meeting, then cancels it, from her 1:1 space with "
             "the bot. There 'meetings' lists every meeting she made, in any space, with the "
             "guests' contacts in full; in the space 'Clinic' it would list those made there.")
    show.act("\nAlice (1:1): meetings", lambda: box.post_message(alice, dm, "meetings"))
    listed = _latest_card(box, dm, ids.ACTION_CHANGE_TIME)
    show.act(f"\nAlice presses 'Change the time' on 'Patient follow-up', picks {new_day} at "
             "14:30 and presses 'Move the meeting'",
             lambda: _press(box, alice, listed, "Move the meeting", {
                 LABELS[ids.NEW_START_DATE]: new_day.isoformat(),
                 LABELS[ids.NEW_START_TIME]: "14:30"}))
    show.guest_received("Zoë")
    show.act("\nAlice (1:1): meetings", lambda: box.post_message(alice, dm, "meetings"))
    listed = _latest_card(box, dm, ids.ACTION_CANCEL_MEETING)
    show.act("\nAlice presses 'Cancel' on 'Patient follow-up', then 'Yes, cancel the meeting'",
             lambda: _press(box, alice, listed, "Yes, cancel the meeting"))
    show.guest_received("Zoë")


def _remind(box: Sandbox, show: Transcript, alice: dict[str, Any], dm: dict[str, Any]) -> None:
    """Alice makes a meeting for Lucía, who reads Spanish, with the quick path: it starts a
    minute and a few seconds from now (a time with seconds, which the quick path takes) and
    reminds her a minute before, so her reminder comes while the demo waits for it."""
    start = (datetime.now(ZoneInfo(ZONE)).replace(microsecond=0)
             + timedelta(minutes=1, seconds=REMINDER_IN))
    command = (f"meet Consulta de seguimiento date={start.date()} time={start:%H:%M:%S} "
               f"for=30m lang=es remind=1m to={LUCIA_EMAIL},{LUCIA_MOBILE}")
    show.say("\nLucía reads Spanish: Alice chooses it for her guests (lang=es) and a reminder "
             "a minute before the start (remind=1m; 15 minutes unless chosen).")
    show.act(f"\nAlice (1:1): {command}", lambda: box.post_message(alice, dm, command))
    show.guest_received("Lucía")
    mails, texts = len(box.mail()), len(box.sms())
    show.act("\nA minute before the start, the bot reminds Lucía (the demo waits for it)",
             lambda: box.wait_for(lambda: len(box.mail()) > mails and len(box.sms()) > texts,
                                  timeout=REMINDER_IN + 30))
    show.guest_received("Lucía")
    _report_delivered(box, show, box.sms()[-1])


def _report_delivered(box: Sandbox, show: Transcript, text: SentSms) -> None:
    """With a public URL, the carrier's word on Lucía's reminder: Twilio calls the bot's status
    callback, signed, with "sent" then "delivered"; the bot records each."""
    if text.status_callback is None:
        return
    answers = [box.twilio_report(text.sid, status).answer for status in ("sent", "delivered")]
    show.say(f"  Twilio to the bot's status callback: Lucía's reminder text sent, then delivered "
             f"(signed; the bot answered {answers[0]} and {answers[1]})")


def _press(box: Sandbox, person: dict[str, Any], message: dict[str, Any], button: str,
           typed: Mapping[str, str] | None = None) -> None:
    """Press ``button`` on a card just posted as Webex's app does: it sends the button's data
    over the values of the inputs shown (the card's own, and those of the card the button
    opened in place), as they start or as the person typed them (``typed``, by label)."""
    card = message["attachments"][0]["content"]
    [(submit, inputs)] = [(action, inputs) for action, inputs in _submits(card)
                          if action.get("title") == button]
    values = {field["id"]: str(field.get("value", "")) for field in inputs}
    by_label = {field.get("label"): field["id"] for field in inputs}
    for label, value in (typed or {}).items():
        values[by_label[label]] = value
    box.submit_card(person, message["id"], values | submit["data"])


def _submits(card: dict[str, Any], around: tuple[dict[str, Any], ...] = ()
             ) -> Iterator[tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
    """Each Action.Submit of a card, with the inputs sent with it: those of its own card and of
    the cards around it (a card an Action.ShowCard opens sits inside its parent)."""
    fields, actions = _parts(card)
    shown = (*around, *fields)
    for action in actions:
        if action["type"] == "Action.ShowCard":
            yield from _submits(action["card"], shown)
        elif action["type"] == "Action.Submit":
            yield action, shown


def tomorrow() -> date:
    """Tomorrow in Alice's zone: her meeting's day, still to come wherever the demo runs."""
    return datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)


def _cluster(webex_id: str) -> str:
    """The cluster a Webex id names (ciscospark://CLUSTER/KIND/uuid)."""
    text = base64.b64decode(webex_id + "=" * (-len(webex_id) % 4)).decode("ascii")
    return text.removeprefix("ciscospark://").rsplit("/", 2)[0]


def _latest_card(box: Sandbox, room: dict[str, Any], action: str) -> dict[str, Any]:
    """The card ``_newest_with`` finds, which the scripted conversation expects."""
    message = _newest_with(box, room, action)
    if message is None:
        raise RuntimeError(f"the bot posted no card to {action} in the space")
    return message


def _newest_with(box: Sandbox, room: dict[str, Any], action: str) -> dict[str, Any] | None:
    """The newest message in ``room`` whose card has a button that asks for ``action``."""
    return next((m for m in reversed(box.messages_in(room)) if any(
        action in str(a.get("content")) for a in m.get("attachments") or [])), None)


def _converse(box: Sandbox, show: Transcript, inp: TextIO) -> None:
    """Let a person talk to the bot as Alice and fill its forms at the prompt."""
    alice = box.add_person("alice@clinic.example.com", "Alice Martin", timezone=ZONE)
    dm, clinic = box.direct_room(alice), box.add_room("Clinic", members=[alice])
    show.room(dm, "1:1")
    show.room(clinic, "Clinic")
    show.say("You are Alice. Type to the bot in your 1:1 space; start with @ to mention it in "
             "the group space 'Clinic'. Try: help, meet Follow-up guests=2, @new. "
             "An empty line ends the demo.")
    while (line := _ask(show, inp, "you> ")) is not None and line:
        room = clinic if line.startswith("@") else dm
        text = line.lstrip("@").strip()
        show.act("", functools.partial(box.post_message, alice, room, text))
        show.guest_received()
        form = _newest_with(box, room, ids.ACTION_CREATE)
        if form is not None and (_ask(show, inp, "Fill in the form now? [Y/n] ") or "y") \
                .lower().startswith("y"):
            inputs = _fill_form(show, inp, group=room is clinic)
            show.act("", functools.partial(box.submit_card, alice, form["id"], inputs))
            show.guest_received()


FORM_PROMPTS = (
    (ids.SUBJECT, "Subject", "Consultation"),
    (ids.HOSTS, "Hosts (0-25)", "1"),
    (ids.GUESTS, "Guests (0-25)", "1"),
    (ids.DEVICES, f"Devices to dial in ({', '.join(d.name for d in CATALOG)}), "
     "comma-separated", ""),
    (ids.EXTRA_DEVICES, "Other SIP addresses", ""),
    (ids.SHORT_LINKS, "Short links (true/false)", "true"),
    (ids.VERTICAL, "Meeting type (gen/hc)", "gen"),
    (ids.START_DATE, "Start date (YYYY-MM-DD, empty for now)", ""),
    (ids.START_TIME, "Start time (HH:MM)", ""),
    (ids.DURATION, f"Duration ({', '.join(ids.DURATION_CHOICES)})", DEFAULT_DURATION),
    (ids.VALID_FOR, f"Links valid for ({', '.join(ids.VALID_FOR_CHOICES)})", DEFAULT_VALID_FOR),
    (ids.GUEST_CONTACTS, f"Send guests their links (emails or mobiles, e.g. {ZOE_EMAIL})", ""),
)


def _fill_form(show: Transcript, inp: TextIO, *, group: bool) -> dict[str, str]:
    """Ask for each field of the form; an empty answer keeps the default."""
    prompts = FORM_PROMPTS + (
        ((ids.PRIVATE_HOST_LINKS, "Send host links to you privately (true/false)", "true"),)
        if group else ()
    )
    inputs = {ids.ACTION: ids.ACTION_CREATE}
    for input_id, label, default in prompts:
        answer = _ask(show, inp, f"  {label} [{default}]: ")
        inputs[input_id] = answer if answer else default
    inputs[ids.DEVICES] = _devices_by_name(inputs[ids.DEVICES])
    return inputs


def _devices_by_name(typed: str) -> str:
    """The devices as the form's drop-down submits them (their SIP addresses), from their names
    as listed (any case); an address, or a name not in the catalog, is passed on for the bot to
    judge."""
    by_name = {device.name.lower(): device.sip_uri for device in CATALOG}
    entries = (entry.strip() for entry in typed.split(","))
    return ",".join(by_name.get(entry.lower(), entry) for entry in entries if entry)


def _ask(show: Transcript, inp: TextIO, prompt: str) -> str | None:
    """One line from the person, None at the end of input."""
    show.prompt(prompt)
    line = inp.readline()
    return line.strip() if line else None
