"""From an activity to the event a webhook would have carried, through the REST API.

The stored event is the webhook's, field for field and with the same ``data.id``, so the rest
of the bot cannot tell the two sources apart and an event arriving both ways is stored once.
"""

from __future__ import annotations

from typing import Any

from bot.errors import Rejected
from bot.events import MEMBERSHIP, MESSAGE, Event
from bot.listen.activity import PublicActivity
from bot.upstream.webex import WebexClient

# What messages/created and attachmentActions/created carry in ``data`` (no content).
MESSAGE_FIELDS = ("id", "roomId", "roomType", "personId", "personEmail", "created", "parentId",
                  "mentionedPeople")
SUBMIT_FIELDS = ("id", "type", "messageId", "personId", "roomId", "created")


class Resolver:
    """Looks up the public record an activity names; UpstreamError when Webex cannot say now."""

    def __init__(self, webex: WebexClient) -> None:
        self._webex = webex

    def event(self, activity: PublicActivity) -> Event | None:
        """The webhook-shaped event, or None when it is nothing the bot's webhooks would see:
        its own messages, group messages that do not mention it, other people joining."""
        me = self._webex.me().id
        if activity.actor_id == me and activity.kind != MEMBERSHIP:
            return None
        if activity.kind == MEMBERSHIP and activity.object_id != me:
            return None
        try:
            if activity.kind == MEMBERSHIP:
                membership = self._webex.membership(activity.room_id, me)
                if membership is None:
                    return None
                return _event(MEMBERSHIP, membership, activity.actor_id)
            if activity.kind == MESSAGE:
                record = _only(self._webex.message_record(activity.event_id), MESSAGE_FIELDS)
            else:
                record = _only(self._webex.attachment_action_record(activity.event_id),
                               SUBMIT_FIELDS)
        except Rejected:
            # Deleted since, or a group message the bot may not read: nothing a webhook would
            # bring. In a 1:1 space and for a card submit a webhook would have come; the worker
            # then fails to fetch it as it would, and tells the person.
            if activity.kind == MEMBERSHIP or (activity.kind == MESSAGE and not activity.direct):
                return None
            return _event(activity.kind, _announced(activity), activity.actor_id)
        if activity.kind == MESSAGE and record.get("roomType") == "group" \
                and me not in (record.get("mentionedPeople") or []):
            return None  # in group spaces a bot hears only its mentions, as with webhooks
        return _event(activity.kind, record, activity.actor_id)


def _announced(activity: PublicActivity) -> dict[str, Any]:
    """What a webhook would announce, from the activity alone."""
    data = {"id": activity.event_id, "roomId": activity.room_id, "personId": activity.actor_id,
            "created": activity.published or None}
    data.update({"roomType": "direct"} if activity.kind == MESSAGE else {"type": "submit"})
    return _only(data, MESSAGE_FIELDS + SUBMIT_FIELDS)


def message_event(record: dict[str, Any]) -> Event:
    """The event for a message listed through REST (the catch-up after a gap)."""
    data = _only(record, MESSAGE_FIELDS)
    return _event(MESSAGE, data, str(data.get("personId", "")))


def _event(kind: tuple[str, str], data: dict[str, Any], actor_id: str) -> Event:
    resource, event = kind
    return Event(resource, event, str(data["id"]), actor_id=actor_id, data=data)


def _only(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: record[name] for name in fields if record.get(name) is not None}
