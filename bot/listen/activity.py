"""Reading Webex's websocket frames: which activity happened, and the public ids it names.

A frame carries an *activity* with internal UUIDs (the message's, the space's, the actor's).
The REST API's ids are those UUIDs wrapped as ``base64("ciscospark://us/KIND/<uuid>")``, which
is how open-source listeners resolve them (see ``PROTOCOL.md``); the public record is then
fetched through REST, so no message needs decrypting.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from bot.events import MEMBERSHIP, MESSAGE, SUBMIT

# UNCERTAIN: every id seen from open-source clients names the "us" cluster, whatever the region.
CLUSTER = "us"
VERBS = {"post": MESSAGE, "share": MESSAGE, "cardAction": SUBMIT, "add": MEMBERSHIP}
"""Verbs the bot acts on ("share" is a message with files), as the webhook kind they stand for."""
ID_KINDS = {MESSAGE: "MESSAGE", SUBMIT: "ATTACHMENT_ACTION"}


def public_id(kind: str, raw_uuid: str) -> str:
    """The REST API's id for an internal UUID: unpadded base64 of ciscospark://us/KIND/uuid."""
    text = f"ciscospark://{CLUSTER}/{kind}/{raw_uuid}"
    return base64.b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Activity:
    """One relevant activity: what kind of event it stands for and the public ids it names."""

    kind: tuple[str, str]
    activity_id: str
    actor_id: str
    room_id: str
    object_id: str
    published: str
    direct: bool = False  # a 1:1 space (the target is tagged ONE_ON_ONE)

    @property
    def event_id(self) -> str:
        """The id a webhook would carry as ``data.id`` (for a membership: not known here)."""
        return public_id(ID_KINDS[self.kind], self.activity_id) if self.kind in ID_KINDS else ""


@dataclass(frozen=True)
class Frame:
    """One websocket frame: its id (to acknowledge), its type, the activity if relevant,
    Webex's sequence number (a skip means frames were lost), and its ``data.eventType``."""

    id: str | None
    type: str | None
    activity: Activity | None
    sequence: int | None = None
    event_type: str | None = None


def read_frame(text: str | bytes) -> Frame:
    """Read a frame; anything unreadable or irrelevant comes back without an activity."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return Frame(None, None, None)
    if not isinstance(frame, dict):
        return Frame(None, None, None)
    frame_id = _text(frame.get("id")) or None
    frame_type = _text(frame.get("type")) or None
    sequence = frame.get("sequenceNumber")
    sequence = sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None
    data = frame.get("data")
    data = data if isinstance(data, dict) else {}
    event_type = _text(data.get("eventType")) or None
    activity = data.get("activity")
    if event_type != "conversation.activity" or not isinstance(activity, dict):
        return Frame(frame_id, frame_type, None, sequence, event_type)
    return Frame(frame_id, frame_type, _activity(activity), sequence, event_type)


def _activity(activity: dict[str, Any]) -> Activity | None:
    kind = VERBS.get(_text(activity.get("verb")))
    actor, target, obj = (_object(activity, name) for name in ("actor", "target", "object"))
    activity_id = _text(activity.get("id"))
    actor_uuid = _text(actor.get("entryUUID")) or _text(actor.get("id"))
    room_uuid = _text(target.get("id"))
    if kind is None or not (activity_id and actor_uuid and room_uuid):
        return None
    object_uuid = _text(obj.get("entryUUID")) or _text(obj.get("id"))
    if kind == MEMBERSHIP and (_text(obj.get("objectType")) != "person" or not object_uuid):
        return None  # "add" also names other things added to a space
    return Activity(
        kind=kind,
        activity_id=activity_id,
        actor_id=public_id("PEOPLE", actor_uuid),
        room_id=public_id("ROOM", room_uuid),
        object_id=public_id("PEOPLE", object_uuid) if object_uuid else "",
        published=_text(activity.get("published")),
        direct="ONE_ON_ONE" in (target.get("tags") or []),
    )


def _object(activity: dict[str, Any], name: str) -> dict[str, Any]:
    value = activity.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) and len(value) <= 512 else ""
