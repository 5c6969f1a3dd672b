"""Webex as the conversation and its outbox see it: the one fake of `bot.upstream.webex.Webex`.

It serves the messages, card submits and people a test puts in its tables, keeps every message
it is asked to create in its space (a message to a person in their 1:1 space) and lists them
newest first as Webex does, and fails a method with a set error. A worker killed between Webex
creating a message and learning its id is played by ``die_after_creating``.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.errors import Rejected, UpstreamError
from bot.upstream.webex import AttachmentAction, Message, Person, Webex
from tests.support.guests import Killed

ORG = "org-clinic"
T = TypeVar("T")
BOT = Person("bot-id", ("router@webex.bot",), "Router Bot", ORG, type="bot")


class FakeWebex:
    """Webex's messages, submits, people and spaces, in tables a test fills and reads."""

    def __init__(self, *people: Person) -> None:
        self.people: dict[str, Person] = {person.id: person for person in (BOT, *people)}
        self.written: dict[str, Message] = {}  # what people wrote, served by `message`
        self.actions: dict[str, AttachmentAction] = {}  # card submits, by id
        self.members: set[tuple[str, str]] = set()  # (space, person) memberships
        self.group_spaces: set[str] = set()  # whose messages a bot may not list, as in Webex
        self.sends: list[dict[str, Any]] = []  # the keywords of every call of send, in order
        self.messages: list[dict[str, Any]] = []  # what the spaces hold, as listed, oldest first
        self.lookups: list[tuple[str, str | None, int]] = []  # every call of recent_messages
        self.direct_lookups: list[tuple[str, str | None, int]] = []  # ... of direct_messages
        self.deleted: list[str] = []
        self.fetched: list[tuple[str, str]] = []  # (method, id) of every message/submit/person
        self.failures: dict[str, UpstreamError] = {}  # method name -> the error it raises
        self.die_after_creating = False
        self.latency = 0.0  # seconds each fetch takes, for tests of callers racing each other
        self._ids = itertools.count(1)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every send's keywords with the id of the message it created."""
        created = [item for item in self.messages if item.get("sent")]
        return [{**keywords, "id": item["id"]} for keywords, item in zip(self.sends, created,
                                                                          strict=True)]

    def fail(self, error: UpstreamError, *methods: str) -> None:
        """Make each of ``methods`` raise ``error`` from now on."""
        self.failures.update(dict.fromkeys(methods, error))

    def _maybe_fail(self, method: str) -> None:
        if method in self.failures:
            raise self.failures[method]

    def me(self) -> Person:
        self._maybe_fail("me")
        return BOT

    def person(self, person_id: str) -> Person:
        return self._fetch("person", person_id, self.people)

    def message(self, message_id: str) -> Message:
        return self._fetch("message", message_id, self.written)

    def attachment_action(self, action_id: str) -> AttachmentAction:
        return self._fetch("attachment_action", action_id, self.actions)

    def _fetch(self, method: str, item_id: str, table: dict[str, T]) -> T:
        self.fetched.append((method, item_id))
        time.sleep(self.latency)
        self._maybe_fail(method)
        if item_id not in table:
            raise Rejected("Webex", status=404)
        return table[item_id]

    def membership(self, room_id: str, person_id: str) -> dict[str, Any] | None:
        self._maybe_fail("membership")
        if (room_id, person_id) not in self.members:
            return None
        return {"roomId": room_id, "personId": person_id}

    def send(self, **message: Any) -> str:
        """Create the message, recording the keywords exactly as passed."""
        self._maybe_fail("send")
        self.sends.append(message)
        room_id, parent_id = message.get("room_id"), message.get("parent_id")
        space = room_id or direct_space(str(message.get("to_person_id")))
        item = self.add(markdown=message["markdown"], room_id=space, parent_id=parent_id, sent=True)
        if self.die_after_creating:
            raise Killed  # Webex has the message; the worker never learns its id
        return str(item["id"])

    def add(
        self, *, markdown: str, room_id: str, parent_id: str | None = None,
        person_id: str = BOT.id, created: float | None = None, sent: bool = False,
    ) -> dict[str, Any]:
        """Put a message in a space as Webex would hold it (not counted as a send unless
        ``sent``)."""
        item: dict[str, Any] = {
            "id": f"sent-{next(self._ids)}",
            "roomId": room_id,
            "personId": person_id,
            "markdown": markdown,
            "created": webex_time(time.time() if created is None else created),
        }
        if parent_id is not None:
            item["parentId"] = parent_id
        if sent:
            item["sent"] = True
        self.messages.append(item)
        return item

    def recent_messages(
        self, room_id: str, parent_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The space's messages, newest first. Replies of every thread are listed whatever
        thread is asked for, so that it is the caller's own checks that must leave out what
        is not its message."""
        self.lookups.append((room_id, parent_id, limit))
        self._maybe_fail("recent_messages")
        if room_id in self.group_spaces:  # a bot lists a group space's mentions of it only
            raise Rejected("Webex", status=403)
        return self._newest(room_id, limit)

    def direct_messages(
        self, person_id: str, parent_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The 1:1 space's messages with a person, newest first (every thread, as above)."""
        self.direct_lookups.append((person_id, parent_id, limit))
        self._maybe_fail("direct_messages")
        return self._newest(direct_space(person_id), limit)

    def _newest(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        found = [_listed(item) for item in self.messages if item["roomId"] == room_id]
        return list(reversed(found))[:limit]

    def delete_message(self, message_id: str) -> None:
        self._maybe_fail("delete_message")
        self.deleted.append(message_id)


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "sent"}


def direct_space(person_id: str) -> str:
    """The fake's id of the bot's 1:1 space with a person."""
    return f"direct-with-{person_id}"


def webex_time(epoch: float) -> str:
    """A creation time as Webex writes it: ISO 8601, milliseconds, UTC with a Z."""
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


_IS_WEBEX: type[Webex] = FakeWebex  # mypy checks the fake against the protocol here
