"""Reading Webex's websocket frames: which activity happened, and the public ids it names.

A frame carries an *activity* with internal UUIDs (the message's, the space's, the actor's) and
the space's address at its cluster's conversation service (``target.url``). The REST API's
ids are those UUIDs wrapped as ``base64("ciscospark://CLUSTER/KIND/<uuid>")``, where CLUSTER is
the space's cluster for rooms, messages, memberships and card actions ("us" for the original
US cluster, else its ``urn:TEAM:...`` id) and always "us" for people and organisations. The
cluster is found as the JS SDK finds it (``getHydraClusterString``): the host of ``target.url``
looked up in the service catalog's host map (see ``PROTOCOL.md``). The public record is then
fetched through REST, so no message needs decrypting.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from bot.events import MEMBERSHIP, MESSAGE, SUBMIT

US_CLUSTERS = ("urn:TEAM:us-east-2_a", "urn:TEAM:us-east-1_int13")
"""The clusters REST ids call "us" (the original one, and Webex's integration twin)."""
UNCLUSTERED = ("PEOPLE", "ORGANIZATION")
"""Kinds whose ids say "us" wherever the space is hosted."""
VERBS = {"post": MESSAGE, "share": MESSAGE, "cardAction": SUBMIT, "add": MEMBERSHIP}
"""Verbs the bot acts on ("share" is a message with files), as the webhook kind they stand for."""
ID_KINDS = {MESSAGE: "MESSAGE", SUBMIT: "ATTACHMENT_ACTION"}


def hydra_cluster(cluster_id: str) -> str | None:
    """How REST ids spell a catalog cluster id ("urn:TEAM:eu-central-1_k:conversation" is
    "urn:TEAM:eu-central-1_k"; the US cluster is "us"); None for what is no cluster id."""
    if cluster_id.startswith(US_CLUSTERS):
        return "us"
    parts = cluster_id.split(":")
    return ":".join(parts[:3]) if len(parts) >= 3 and all(parts[:3]) else None


def public_id(kind: str, raw_uuid: str, cluster: str) -> str:
    """The REST API's id for an internal UUID: unpadded base64 of
    ciscospark://CLUSTER/KIND/uuid (CLUSTER "us" for people and organisations)."""
    where = "us" if kind in UNCLUSTERED else cluster
    text = f"ciscospark://{where}/{kind}/{raw_uuid}"
    return base64.b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Activity:
    """One relevant activity as the frame names it: internal UUIDs and the conversation's URL
    (whose host says the cluster, hence the REST ids: :meth:`in_cluster`)."""

    kind: tuple[str, str]
    activity_uuid: str
    actor_uuid: str
    room_uuid: str
    object_uuid: str
    published: str
    conversation_url: str
    direct: bool = False  # a 1:1 space (the target is tagged ONE_ON_ONE)

    def in_cluster(self, cluster: str) -> PublicActivity:
        """The activity with REST ids, for a space hosted in ``cluster`` (as ids spell it)."""
        return PublicActivity(
            kind=self.kind,
            event_id=public_id(ID_KINDS[self.kind], self.activity_uuid, cluster)
            if self.kind in ID_KINDS else "",
            actor_id=public_id("PEOPLE", self.actor_uuid, cluster),
            room_id=public_id("ROOM", self.room_uuid, cluster),
            object_id=public_id("PEOPLE", self.object_uuid, cluster) if self.object_uuid else "",
            published=self.published,
            direct=self.direct,
        )


@dataclass(frozen=True)
class PublicActivity:
    """An activity with the REST API's ids; ``event_id`` is what a webhook carries as
    ``data.id`` (for a membership: not known here, so empty)."""

    kind: tuple[str, str]
    event_id: str
    actor_id: str
    room_id: str
    object_id: str
    published: str
    direct: bool = False


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
        activity_uuid=activity_id,
        actor_uuid=actor_uuid,
        room_uuid=room_uuid,
        object_uuid=object_uuid if kind == MEMBERSHIP else "",
        published=_text(activity.get("published")),
        conversation_url=_text(target.get("url")),
        direct="ONE_ON_ONE" in (target.get("tags") or []),
    )


def _object(activity: dict[str, Any], name: str) -> dict[str, Any]:
    value = activity.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) and len(value) <= 512 else ""
