"""The Webex state the sandbox emulates: people, spaces, memberships, messages and card actions.

Methods raise ``ApiError`` with the status Webex would answer, so the REST routes and the
test-facing ``Sandbox`` share one set of rules. All state sits behind the journal's lock.

A space is hosted in the cluster of the organisation of the person who created it (the bot's
organisation's, ``home_cluster``, but for organisations made with ``add_org``); its id, and
those of its messages, memberships and card actions, name that cluster, so an id spelled with
another cluster is not found (404), as in Webex.
"""

from __future__ import annotations

import copy
from typing import Any

from .content import CONTENT_KEYS
from .ids import CLUSTERS, IdFactory, now_iso
from .journal import Journal
from .responses import ApiError

MAX_EDITS = 10
NO_ROOM = "Could not find a room with provided ID."
NO_MESSAGE = "Could not find a message with provided ID."


class World:
    """Own every person, space, membership, message and attachment action."""

    def __init__(self, journal: Journal, ids: IdFactory, home_cluster: str = "us") -> None:
        self._journal = journal
        self._lock = journal.lock
        self._ids = ids
        self.org_id = ids.new("ORGANIZATION")
        if home_cluster not in CLUSTERS:
            raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}")
        self.home_cluster = home_cluster
        self._org_clusters = {self.org_id: home_cluster}
        self._room_clusters: dict[str, str] = {}
        self._people: dict[str, dict[str, Any]] = {}
        self._rooms: dict[str, dict[str, Any]] = {}
        self._members: dict[str, dict[str, dict[str, Any]]] = {}
        self._direct: dict[str, str] = {}
        self._messages: dict[str, dict[str, Any]] = {}
        self._deleted: set[str] = set()
        self._edits: dict[str, int] = {}
        self._actions: dict[str, dict[str, Any]] = {}
        self.bot = self.add_person(
            "instant-connect@webex.bot", "Instant Connect", kind="bot", nick_name="Instant"
        )

    # organisations and people -------------------------------------------------------------

    def add_org(self, cluster: str) -> str:
        """A new organisation whose spaces are hosted in ``cluster`` (a name in CLUSTERS)."""
        if cluster not in CLUSTERS:
            raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}")
        with self._lock:
            org_id = self._ids.new("ORGANIZATION")
            self._org_clusters[org_id] = cluster
            return org_id

    def add_person(
        self,
        email: str,
        display_name: str,
        org_id: str | None = None,
        timezone: str | None = None,
        *,
        kind: str = "person",
        nick_name: str | None = None,
    ) -> dict[str, Any]:
        """Create a person (or the bot) with a unique email."""
        first, _, last = display_name.partition(" ")
        with self._lock:
            if any(email in p["emails"] for p in self._people.values()):
                raise ValueError(f"a person with email {email} already exists")
            person: dict[str, Any] = {
                "id": self._ids.new("PEOPLE"),
                "emails": [email],
                "displayName": display_name,
                "nickName": nick_name or first,
                "firstName": first,
                "lastName": last,
                "orgId": org_id or self.org_id,
                "type": kind,
                "created": now_iso(),
            }
            if timezone is not None:
                person["timezone"] = timezone
            self._people[person["id"]] = person
            self._journal.changed()
            return copy.deepcopy(person)

    def person(self, person_id: str) -> dict[str, Any]:
        """Look a person up by id, or 404."""
        with self._lock:
            if person_id not in self._people:
                raise ApiError(404, "Could not find a person with provided ID.")
            return copy.deepcopy(self._people[person_id])

    def person_by_email(self, email: str) -> dict[str, Any]:
        """Look a person up by email, or 404."""
        with self._lock:
            for person in self._people.values():
                if email.lower() in (e.lower() for e in person["emails"]):
                    return copy.deepcopy(person)
        raise ApiError(404, "Could not find a person with provided email.")

    # spaces and memberships ---------------------------------------------------------------

    def add_room(
        self, title: str, members: list[str], *, room_type: str = "group", with_bot: bool = True
    ) -> dict[str, Any]:
        """Create a space; its first member is the creator."""
        people = [*members, self.bot["id"]] if with_bot else list(members)
        with self._lock:
            for person_id in people:
                self.person(person_id)
            creator = people[0] if people else self.bot["id"]
            cluster = self._org_clusters.get(self._people[creator]["orgId"], self.home_cluster)
            room_id = self._ids.new("ROOM", cluster)
            room: dict[str, Any] = {
                "id": room_id,
                "title": title,
                "type": room_type,
                "isLocked": False,
                "creatorId": creator,
                "created": now_iso(),
            }
            room["lastActivity"] = room["created"]
            self._rooms[room_id] = room
            self._room_clusters[room_id] = cluster
            self._members[room_id] = {}
            for person_id in people:
                self.add_member(room_id, person_id)
            return copy.deepcopy(room)

    def direct_room(self, person_id: str) -> dict[str, Any]:
        """Find or create the 1:1 space between a person and the bot."""
        with self._lock:
            if person_id not in self._direct:
                title = self.person(person_id)["displayName"]
                room = self.add_room(title, [person_id], room_type="direct")
                self._direct[person_id] = room["id"]
            return self.room(self._direct[person_id])

    def room(self, room_id: str) -> dict[str, Any]:
        """Look a space up by id, or 404."""
        with self._lock:
            if room_id not in self._rooms:
                raise ApiError(404, NO_ROOM)
            return copy.deepcopy(self._rooms[room_id])

    def cluster_of(self, room_id: str) -> str:
        """The cluster hosting a space (a name in CLUSTERS), or 404."""
        with self._lock:
            self.room(room_id)
            return self._room_clusters[room_id]

    def add_member(self, room_id: str, person_id: str) -> dict[str, Any]:
        """Make a person a member of a space (idempotent) and return the membership."""
        with self._lock:
            room = self.room(room_id)
            person = self.person(person_id)
            members = self._members[room_id]
            if person_id not in members:
                members[person_id] = {
                    "id": self._ids.new("MEMBERSHIP", self._room_clusters[room_id]),
                    "roomId": room_id,
                    "roomType": room["type"],
                    "personId": person_id,
                    "personEmail": person["emails"][0],
                    "personDisplayName": person["displayName"],
                    "personOrgId": person["orgId"],
                    "isModerator": False,
                    "created": now_iso(),
                }
                self._journal.changed()
            return copy.deepcopy(members[person_id])

    def membership(self, room_id: str, person_id: str) -> dict[str, Any] | None:
        """A person's membership of a space, or None."""
        with self._lock:
            return copy.deepcopy(self._members.get(room_id, {}).get(person_id))

    def rooms_of(self, person_id: str, room_type: str | None = None) -> list[dict[str, Any]]:
        """The spaces a person is in (of one type if given), latest activity first."""
        with self._lock:
            rooms = [copy.deepcopy(room) for room_id, room in self._rooms.items()
                     if person_id in self._members[room_id]
                     and room_type in (None, room["type"])]
        return sorted(rooms, key=lambda room: room["lastActivity"], reverse=True)

    def member_room(self, room_id: str, person_id: str) -> dict[str, Any]:
        """Return the space if the person is in it; 404 as Webex answers otherwise."""
        with self._lock:
            if person_id not in self._members.get(room_id, {}):
                raise ApiError(404, NO_ROOM)
            return self.room(room_id)

    # messages -----------------------------------------------------------------------------

    def add_message(
        self, author_id: str, room_id: str, content: dict[str, Any], parent_id: str | None = None
    ) -> dict[str, Any]:
        """Post a message written by a member of the space; thread replies only to roots."""
        with self._lock:
            room = self.member_room(room_id, author_id)
            if parent_id is not None:
                self._check_parent(parent_id, room_id)
            author = self._people[author_id]
            message: dict[str, Any] = {
                "id": self._ids.new("MESSAGE", self._room_clusters[room_id]), "roomId": room_id}
            if parent_id is not None:
                message["parentId"] = parent_id
            message["roomType"] = room["type"]
            message.update(content)
            message.update(personId=author_id, personEmail=author["emails"][0], created=now_iso())
            self._messages[message["id"]] = message
            self._rooms[room_id]["lastActivity"] = message["created"]
            self._journal.changed()
            return copy.deepcopy(message)

    def _check_parent(self, parent_id: str, room_id: str) -> None:
        """Refuse a thread parent that is missing, elsewhere, or itself a reply."""
        parent = self._messages.get(parent_id)
        if parent is None or parent_id in self._deleted or parent["roomId"] != room_id:
            raise ApiError(400, "parentId must be a message in the same room.")
        if "parentId" in parent:
            raise ApiError(400, "parentId must not be a reply; reply to the thread's root.")

    def message(self, message_id: str) -> dict[str, Any] | None:
        """Any message ever posted, with "deleted": True once deleted."""
        with self._lock:
            message = copy.deepcopy(self._messages.get(message_id))
            if message is not None and message_id in self._deleted:
                message["deleted"] = True
            return message

    def readable_message(self, message_id: str, reader_id: str) -> dict[str, Any]:
        """A live message in a space the reader belongs to, or 404."""
        with self._lock:
            message = self._messages.get(message_id)
            if message is None or message_id in self._deleted:
                raise ApiError(404, NO_MESSAGE)
            self.member_room(message["roomId"], reader_id)
            return copy.deepcopy(message)

    def edit_message(
        self, message_id: str, editor_id: str, room_id: object, content: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace the content of one's own message, at most ten times."""
        with self._lock:
            message = self.readable_message(message_id, editor_id)
            if room_id != message["roomId"]:
                raise ApiError(400, "roomId must be the room of the message.")
            if message["personId"] != editor_id:
                raise ApiError(403, "Only the author of a message can edit it.")
            if self._edits.get(message_id, 0) >= MAX_EDITS:
                raise ApiError(400, f"A message cannot be edited more than {MAX_EDITS} times.")
            self._edits[message_id] = self._edits.get(message_id, 0) + 1
            stored = self._messages[message_id]
            for key in CONTENT_KEYS:
                stored.pop(key, None)
            stored.update(content, updated=now_iso())
            self._journal.changed()
            return copy.deepcopy(stored)

    def delete_message(self, message_id: str, by_id: str) -> None:
        """Delete one's own message."""
        with self._lock:
            message = self.readable_message(message_id, by_id)
            if message["personId"] != by_id:
                raise ApiError(403, "Only the author of a message can delete it.")
            self._deleted.add(message_id)
            self._journal.changed()

    def messages_in(self, room_id: str) -> list[dict[str, Any]]:
        """Live messages of a space, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._messages.values()
                if m["roomId"] == room_id and m["id"] not in self._deleted
            ]

    # attachment actions -------------------------------------------------------------------

    def add_action(self, person_id: str, message_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Record a card submit; a deleted card can still be pressed by a stale client."""
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                raise ApiError(404, NO_MESSAGE)
            self.member_room(message["roomId"], person_id)
            action = {
                "id": self._ids.new("ATTACHMENT_ACTION", self._room_clusters[message["roomId"]]),
                "type": "submit",
                "messageId": message_id,
                "inputs": copy.deepcopy(inputs),
                "personId": person_id,
                "roomId": message["roomId"],
                "created": now_iso(),
            }
            self._actions[action["id"]] = action
            self._journal.changed()
            return copy.deepcopy(action)

    def action(self, action_id: str) -> dict[str, Any]:
        """Look an attachment action up by id, or 404."""
        with self._lock:
            if action_id not in self._actions:
                raise ApiError(404, "Could not find an attachment action with provided ID.")
            return copy.deepcopy(self._actions[action_id])
