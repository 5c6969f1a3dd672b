"""The conversation wired to the one fake of Webex, of the broker, of the mail server and of
the SMS provider, over a real store: events are fed as a webhook carries them, through the
store as the intake stores them, and what was sent is read back from the fakes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from bot.conversation.channels import GuestChannel
from bot.conversation.router import Conversation, ConversationConfig
from bot.events import MEMBERSHIP, MESSAGE, SUBMIT, Event
from bot.jobs.runner import Attempt
from bot.jobs.storage import Job, Store
from bot.meetings.book import MeetingBook
from bot.upstream.webex import AttachmentAction, Message, Person
from cards import inputs as ids
from cards.inputs import CatalogDevice
from tests.support.broker import FakeBroker
from tests.support.guests import FakeMail, FakeSms, channels
from tests.support.keys import TEST_KEYRING
from tests.support.webex import BOT, ORG, FakeWebex

NOW = 1_800_000_000.0  # 2027-01-15: the conversation's clock, fixed
ALICE = Person("alice-id", ("alice@clinic.example.com",), "Alice Doctor", ORG,
               timezone="America/New_York")
STRANGER = Person("mallory-id", ("mallory@elsewhere.example.com",), "Mallory", "org-elsewhere")
OTHER_BOT = Person("other-bot-id", ("helper@webex.bot",), "Helper Bot", ORG, type="bot")
CATALOG = (
    CatalogDevice("Exam Room 1", "exam-room-1@clinic.example.com"),
    CatalogDevice("Cart 7", "cart-7@clinic.example.com"),
)
DM = "room-alice-1to1"
CLINIC = "room-clinic"
THREAD = "msg-thread-root"
MENTION = (f'<spark-mention data-object-type="person" data-object-id="{BOT.id}">'
           f"{BOT.display_name}</spark-mention>")


class Bot:
    """A conversation wired to the fakes and a real store, and ways to feed it events."""

    def __init__(self, store: Store, **config: Any) -> None:
        self.store = store
        self.webex = FakeWebex(ALICE, STRANGER, OTHER_BOT)
        self.webex.group_spaces.add(CLINIC)
        self.meetings = FakeBroker(NOW)
        self.mail = FakeMail()
        self.sms = FakeSms()
        self.book = MeetingBook(store, TEST_KEYRING, clock=self.now)
        self.conversation = self.built(channels(self.mail, self.sms), phone_region="FR",
                                       **config)
        self._ids = itertools.count(1)

    def now(self) -> float:
        """The conversation's clock, and the broker's: fixed until a test moves it."""
        return self.meetings.now

    def advance(self, seconds: float) -> None:
        self.meetings.now += seconds

    def built(self, guest_channels: Sequence[GuestChannel], **config: Any) -> Conversation:
        """The conversation with these channels and settings, over this bot's fakes."""
        return Conversation(ConversationConfig(device_catalog=CATALOG, **config), self.webex,
                            self.meetings, self.store, self.book, channels=guest_channels,
                            clock=self.now)

    def job(self, event: Event) -> Job:
        """The job a worker gets for this event, through the store as the intake stores it."""
        assert self.store.accept(event.data_id, event.resource, event.to_json())
        job = self.store.claim("test-worker", 60.0)
        assert job is not None and job.event_id == event.data_id and job.attempts == 1
        return job

    def process(self, event: Event, *, last: bool = False) -> Job:
        job = self.job(event)
        self.conversation.process(Attempt(job, last=last))
        return job

    def say(
        self, text: str, *, person: Person = ALICE, room: str = DM, parent_id: str | None = None,
        mention: bool = False, last: bool = False,
    ) -> str:
        """Someone writes a message; it is processed. Returns the message id."""
        message = self.add_message(text, person=person, room=room, parent_id=parent_id,
                                   mention=mention)
        self.process(message_event(message), last=last)
        return message.id

    def add_message(
        self, text: str, *, person: Person = ALICE, room: str = DM, parent_id: str | None = None,
        mention: bool = False,
    ) -> Message:
        message_id = f"msg-{next(self._ids)}"
        html = f"<p>{MENTION} {text}</p>" if mention else ""
        plain = f"{BOT.display_name} {text}" if mention else text
        message = Message(message_id, room, "direct" if room == DM else "group", person.id,
                          person.email, text=plain, html=html, parent_id=parent_id)
        self.webex.written[message_id] = message
        return message

    def submit(
        self, form_id: str, inputs: dict[str, Any], *, person: Person = ALICE,
        room: str = CLINIC, action_id: str | None = None,
    ) -> str:
        """Someone presses a card's button; it is processed. Returns the action id."""
        action = AttachmentAction(action_id or f"action-{next(self._ids)}", form_id, person.id,
                                  room, dict(inputs))
        self.webex.actions[action.id] = action
        self.process(submit_event(action))
        return action.id

    def open_form(self, *, room: str = CLINIC, parent_id: str | None = THREAD) -> str:
        """Mention the bot with ``new``; returns the form's message id."""
        before = len(self.webex.sent)
        self.say("new", room=room, parent_id=parent_id, mention=room != DM)
        [form] = self.webex.sent[before:]
        return str(form["id"])

    def sends(self) -> list[dict[str, Any]]:
        """What was sent, without the ids Webex handed out."""
        return [{k: v for k, v in sent.items() if k != "id"} for sent in self.webex.sent]

    def clear(self) -> None:
        self.webex.sends.clear()
        self.webex.messages.clear()
        self.webex.fetched.clear()
        self.webex.deleted.clear()
        self.meetings.requests.clear()


def message_event(message: Message) -> Event:
    """messages/created as Webex delivers it: ids, no text."""
    data = {"id": message.id, "roomId": message.room_id, "roomType": message.room_type,
            "personId": message.person_id, "personEmail": message.person_email}
    if message.parent_id:
        data["parentId"] = message.parent_id
    return Event(*MESSAGE, message.id, webhook_id="wh-messages", data=data)


def submit_event(action: AttachmentAction) -> Event:
    """attachmentActions/created as Webex delivers it: ids, no inputs, no room type."""
    data = {"id": action.id, "type": "submit", "messageId": action.message_id,
            "personId": action.person_id, "roomId": action.room_id}
    return Event(*SUBMIT, action.id, webhook_id="wh-actions", data=data)


def membership_event(member_id: str, room: str) -> Event:
    data = {"id": f"membership-{member_id}-{room}", "roomId": room, "roomType": "group",
            "personId": member_id}
    return Event(*MEMBERSHIP, str(data["id"]), webhook_id="wh-memberships", data=data)


def create_inputs(**changes: Any) -> dict[str, Any]:
    inputs = {ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Consultation", ids.HOSTS: "1",
              ids.GUESTS: "2", ids.SHORT_LINKS: "true", ids.VERTICAL: "gen",
              ids.HOST_LOGIN: "true", ids.VALID_FOR: "2h"}
    inputs.update(changes)
    return {k: v for k, v in inputs.items() if v is not None}
