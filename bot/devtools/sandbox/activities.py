"""Events as the websocket carries them: a ``conversation.activity`` frame with internal UUIDs.

The REST ids are base64 of ``ciscospark://us/KIND/<uuid>``; a frame names the raw UUIDs, so a
client has to turn them back into REST ids and fetch the record (messages stay encrypted on
the socket in real Webex, so no content is sent here either).
"""

from __future__ import annotations

import uuid
from typing import Any

from .delivery import Event
from .ids import now_iso, raw_uuid

VERBS = {"messages": "post", "attachmentActions": "cardAction", "memberships": "add"}


def activity(event: Event, room_type: str | None) -> dict[str, Any] | None:
    """The activity for a created message, card submit or membership; None for anything else."""
    verb = VERBS.get(event.resource)
    if verb is None or event.event != "created":
        return None
    data = event.data
    actor = raw_uuid(event.actor_id)
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
        "target": {"id": raw_uuid(data["roomId"]), "objectType": "conversation",
                   "tags": ["ONE_ON_ONE"] if room_type == "direct" else []},
    }


def frame(activity: dict[str, Any], sequence: int) -> dict[str, Any]:
    """One frame around an activity, with a fresh id the client acknowledges."""
    return {
        "id": str(uuid.uuid4()),
        "sequenceNumber": sequence,
        "data": {"eventType": "conversation.activity", "activity": activity},
        "filterMessage": False,
    }
