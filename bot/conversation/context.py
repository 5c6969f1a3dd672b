"""What a handler knows about the event it answers: where replies go, whether this is the last
attempt, and how to send. Passed down explicitly, so a handler's inputs are in its signature and
a test can hand it a fake sender.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol


class Sender(Protocol):
    """How a try sends: the outbox's sender, which never sends the same thing twice across
    the retries of an event."""

    def send(self, **message: Any) -> str:
        """Post one Webex message (``Webex.send``'s keywords); its id."""

    def once(
        self, deliver: Callable[[], str], *, service: str,
        find: Callable[[float], str | None] | None = None,
    ) -> str:
        """Deliver one thing outside Webex (an email, a text message) through ``service``; its
        reference. ``find(since)``: what the service delivered since then, where it can tell."""


@dataclass(frozen=True)
class Place:
    """Where a reply goes: the space, and the thread when the person wrote in one."""

    room_id: str
    group: bool
    parent_id: str | None = None


@dataclass(frozen=True)
class EventContext:
    """One try at one event, as the handlers see it."""

    place: Place
    last_attempt: bool  # if this try fails, the event is given up: tell the person now
    sender: Sender

    def at(self, place: Place) -> EventContext:
        """The same try, replying somewhere else (the message's thread, once it is fetched)."""
        return replace(self, place=place)

    def say(self, markdown: str) -> None:
        """A text reply where the person wrote."""
        self.post(markdown)

    def post(self, markdown: str, card: dict[str, Any] | None = None) -> str:
        """A reply where the person wrote, with a card when given; returns the message id."""
        return self.sender.send(room_id=self.place.room_id, parent_id=self.place.parent_id,
                                markdown=markdown, card=card)

    def tell(self, person_id: str, markdown: str, card: dict[str, Any] | None = None) -> str:
        """A message to one person in their 1:1 space."""
        return self.sender.send(to_person_id=person_id, markdown=markdown, card=card)
