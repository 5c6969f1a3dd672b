"""The bench's people and spaces in the sandbox, and the signed deliveries Webex would send.

Each interaction gets a space of its own, so the bot's n-th message in that space marks the
moment the interaction is answered: the form for a mention, the links for a submit. No webhook
is registered in the sandbox: the deliveries are built here and sent by the driver process.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from bot.devtools.bench.driver import Shot
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.delivery import action_event, message_event
from bot.web.envelope import sign
from cards import inputs as ids

FORM_POST = 1  # a mention is answered by the bot's first message in its space
LINKS_POST = 2  # a submit by its second: the links (host links in the space, not privately)


@dataclass(frozen=True)
class Interaction:
    """One delivery and how to recognise its answer: the bot's ``post``-th message in ``room``."""

    room_id: str
    person_id: str
    shot: Shot
    post: int


class Workload:
    """Creates people, spaces, mentions and submits in the sandbox, and signs their deliveries."""

    def __init__(self, box: Sandbox, secret: str, people: int) -> None:
        self._box = box
        self._secret = secret
        self._people = [
            box.add_person(f"bench{number}@example.com", f"Bench Person{number}")["id"]
            for number in range(people)
        ]
        self._turn = itertools.cycle(self._people)
        self._serial = itertools.count(1)

    def mentions(self, count: int) -> list[Interaction]:
        """``count`` people each mentioning the bot with "new" in a fresh space."""
        return [self._mention(next(self._turn)) for _ in range(count)]

    def submits(self, answered: list[Interaction]) -> list[Interaction]:
        """Each person presses Create on the form the bot posted in answer to their mention."""
        return [self._submit(interaction) for interaction in answered]

    def _mention(self, person_id: str) -> Interaction:
        room = self._box.add_room(f"Bench space {next(self._serial)}", members=[person_id])
        message = self._box.post_message(person_id, room, "new")
        data = message_event(message).data
        return Interaction(room["id"], person_id, self._shot("messages", data, person_id),
                           FORM_POST)

    def _submit(self, mention: Interaction) -> Interaction:
        form_id = self._form_in(mention.room_id)
        inputs = {
            ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: f"Bench {next(self._serial)}",
            ids.HOSTS: "1", ids.GUESTS: "1", ids.SHORT_LINKS: "true", ids.VERTICAL: "gen",
            ids.HOST_LOGIN: "true", ids.VALID_FOR: "2h", ids.PRIVATE_HOST_LINKS: "false",
        }
        action = self._box.submit_card(mention.person_id, form_id, inputs)
        data = action_event(action).data
        return Interaction(mention.room_id, mention.person_id,
                           self._shot("attachmentActions", data, mention.person_id), LINKS_POST)

    def _form_in(self, room_id: str) -> str:
        bot_id = self._box.bot["id"]
        for message in self._box.messages_in(room_id):
            if message["personId"] == bot_id and message.get("attachments"):
                return str(message["id"])
        raise RuntimeError(f"the bot posted no form in {room_id}")

    def _shot(self, resource: str, data: dict[str, Any], actor_id: str) -> Shot:
        """The envelope Webex posts for this event, signed with the webhook secret."""
        envelope = {
            "id": f"bench-{resource}", "name": f"bench {resource}", "targetUrl": "bench",
            "resource": resource, "event": "created", "orgId": self._box.org_id,
            "createdBy": self._box.bot["id"], "ownedBy": "creator", "status": "active",
            "actorId": actor_id, "data": data,
        }
        body = json.dumps(envelope).encode("utf-8")
        return Shot(body, sign(body, self._secret))
