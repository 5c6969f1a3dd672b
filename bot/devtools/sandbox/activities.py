"""Events as the websocket carries them: a ``conversation.activity`` frame with internal UUIDs.

The REST ids are base64 of ``ciscospark://CLUSTER/KIND/<uuid>``; a frame names the raw UUIDs
and, in ``target.url``, the conversation service of the cluster hosting the space, so a client
has to find the cluster (through the service catalog's host map), turn the UUIDs back into REST
ids and fetch the record (messages stay encrypted on the socket in real Webex, so no content is
sent here either).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .delivery import Event
from .ids import CLUSTERS, now_iso, raw_uuid

VERBS = {"messages": "post", "attachmentActions": "cardAction", "memberships": "add"}


@dataclass(frozen=True)
class Space:
    """What an activity's target says of its space: direct or group, and where it is hosted."""

    type: str
    cluster: str

    def url(self, room_uuid: str) -> str:
        """The space's address at its cluster's conversation service."""
        return f"{CLUSTERS[self.cluster].conversation_url}/conversations/{room_uuid}"


def activity(event: Event, space: Space) -> dict[str, Any] | None:
    """The activity for a created message, card submit or membership; None for anything else."""
    verb = VERBS.get(event.resource)
    if verb is None or event.event != "created":
        return None
    data = event.data
    actor, room = raw_uuid(event.actor_id), raw_uuid(data["roomId"])
    obj: dict[str, Any]
    if event.resource == "messages":
        activity_id, obj = raw_uuid(data["id"]), {"objectType": "comment"}
    elif event.resource == "attachmentActions":
        activity_id = raw_uuid(data["id"])
        obj = {"objectType": "submit", "parent": {"id": raw_uuid(data["messageId"])}}
    else:
        added = raw_uuid(data["personId"])
        activity_id, obj = str(uuid.uuid4()), {"objectType": "person", "id": added,
                                               "entryUUID": added}
    return {
        "id": activity_id,
        "verb": verb,
        "published": str(data.get("created") or now_iso()),
        "actor": {"id": actor, "entryUUID": actor, "objectType": "person"},
        "object": obj,
        "target": {"id": room, "objectType": "conversation", "url": space.url(room),
                   "tags": ["ONE_ON_ONE"] if space.type == "direct" else []},
    }


def frame(activity: dict[str, Any], sequence: int) -> dict[str, Any]:
    """One frame around an activity, with a fresh id the client acknowledges."""
    return {
        "id": str(uuid.uuid4()),
        "sequenceNumber": sequence,
        "data": {"eventType": "conversation.activity", "activity": activity},
        "filterMessage": False,
    }
