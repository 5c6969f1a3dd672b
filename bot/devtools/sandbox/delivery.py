"""Webhook delivery: which webhooks an event reaches, the signed envelope, and the POST; and
every event handed to the websocket server first.

Events caused by the test (a person writes, presses a card) are delivered synchronously from
the calling thread; events caused by the bot's own REST calls go through one background worker,
so the bot's request returns first and deliveries keep their order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from .background import Background
from .journal import Delivery, Journal
from .webhooks import Hook, WebhookStore, filter_matches

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Event:
    """Something that happened in Webex, as a webhook describes it."""

    resource: str
    event: str
    actor_id: str
    data: dict[str, Any]


def message_event(message: dict[str, Any]) -> Event:
    """Describe a new message the way messages/created carries it (no content)."""
    keys = ("id", "roomId", "roomType", "personId", "personEmail", "created", "parentId")
    data = {k: message[k] for k in keys if k in message}
    if message.get("mentionedPeople"):
        data["mentionedPeople"] = list(message["mentionedPeople"])
    return Event("messages", "created", message["personId"], data)


def action_event(action: dict[str, Any]) -> Event:
    """Describe a card submit the way attachmentActions/created carries it (no inputs)."""
    keys = ("id", "type", "messageId", "personId", "roomId", "created")
    return Event("attachmentActions", "created", action["personId"], {k: action[k] for k in keys})


def membership_event(membership: dict[str, Any], actor_id: str) -> Event:
    """Describe a new membership the way memberships/created carries it."""
    return Event("memberships", "created", actor_id, dict(membership))


def sign(body: bytes, secret: str) -> str:
    """Compute X-Spark-Signature: hex HMAC-SHA1 of the exact body bytes."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def envelope(hook: Hook, event: str, data: dict[str, Any], actor_id: str) -> bytes:
    """Wrap event data in the webhook envelope Webex POSTs."""
    payload = {**hook.record, "event": event, "status": "active", "actorId": actor_id, "data": data}
    return json.dumps(payload).encode("utf-8")


class Dispatcher:
    """Deliver events to the bot's matching webhooks and record every POST."""

    def __init__(self, journal: Journal, webhooks: WebhookStore, bot_token: str, bot_id: str):
        self._journal = journal
        self._webhooks = webhooks
        self._bot_token = bot_token
        self._bot_id = bot_id
        self._background: Background[Event] = Background("sandbox-webhooks", self.publish,
                                                         journal)
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, receive: Callable[[Event], None]) -> None:
        """Hand every event to ``receive`` too, before the webhooks (the websocket does)."""
        self._subscribers.append(receive)

    def _reaches(self, hook: Hook, event: Event) -> bool:
        """Apply the filter and, for messages in group spaces, the bot-only-sees-mentions rule."""
        me = hook.record["createdBy"]
        data = event.data
        group_message = event.resource == "messages" and data.get("roomType") == "group"
        if group_message and me not in data.get("mentionedPeople", []):
            return False
        return filter_matches(hook.record.get("filter"), data, me)

    def publish(self, event: Event) -> list[Delivery]:
        """Deliver an event now to the subscribers and every matching webhook."""
        for receive in self._subscribers:
            receive(event)
        hooks = self._webhooks.targets(self._bot_token, event.resource, event.event)
        return [
            self.send(h, event.data, actor_id=event.actor_id, event=event.event)
            for h in hooks
            if self._reaches(h, event)
        ]

    def publish_later(self, event: Event) -> None:
        """Deliver an event from the background worker, in order."""
        self._background.put(event)

    def send(
        self,
        hook: Hook,
        data: dict[str, Any],
        *,
        actor_id: str,
        event: str | None = None,
        body_override: bytes | None = None,
        signature_override: str | None = None,
    ) -> Delivery:
        """POST one signed envelope (or the given bytes) and record how it went."""
        event = event or hook.record["event"]
        body = envelope(hook, event, data, actor_id) if body_override is None else body_override
        signature = signature_override
        if signature is None and hook.secret:
            signature = sign(body, hook.secret)
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Spark-Signature"] = signature
        started = time.monotonic()
        try:
            status = requests.post(
                hook.record["targetUrl"], data=body, headers=headers, timeout=TIMEOUT_SECONDS
            ).status_code
        except requests.RequestException:
            status = 0
        delivery = Delivery(
            webhook_id=hook.id,
            resource=hook.record["resource"],
            event=event,
            data_id=data.get("id"),
            status=status,
            elapsed_seconds=time.monotonic() - started,
            body=body,
            signature=signature,
        )
        self._journal.record_delivery(delivery)
        return delivery

    @property
    def pending(self) -> bool:
        """Whether an event queued by a REST call is still being delivered."""
        return self._background.pending

    def start(self) -> None:
        """Start the background worker."""
        self._background.start()

    def stop(self) -> None:
        """Finish queued deliveries, then stop the worker."""
        self._background.stop()
