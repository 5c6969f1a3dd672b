"""An event the bot acts on, as it is stored for the workers: a message, a card submit, a
membership. Webhooks deliver them (``bot.web.envelope`` reads those), and so does the websocket
listener with its catch-up after a gap (``bot.listen.resolve`` builds them from what Webex
sends there); each source builds the same :class:`Event`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

MESSAGE = ("messages", "created")
SUBMIT = ("attachmentActions", "created")
MEMBERSHIP = ("memberships", "created")
HANDLED = (MESSAGE, SUBMIT, MEMBERSHIP)
"""The kinds of event the bot handles, as (resource, event); its webhooks ask for these."""
TEXT_STATUS = ("textMessages", "statusReported")
"""Not Webex's: Twilio saying what became of a guest's text message (``bot.web.sms_status``)."""
GUEST_DELIVERY_DUE = ("guestDeliveries", "due")
"""Not Webex's: a guest's message tried again later, scheduled by the bot itself
(``bot.conversation.late_deliveries``)."""
REMINDER = ("reminders", "due")
"""Not Webex's: a meeting's reminder, a job scheduled for its moment
(``bot.conversation.reminders``)."""


@dataclass(frozen=True)
class Event:
    """One delivered event, whichever way it came: what happened, to which resource, and its
    ``data``."""

    resource: str
    event: str
    data_id: str
    webhook_id: str = ""
    actor_id: str | None = None
    org_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> tuple[str, str]:
        """(resource, event), as in :data:`HANDLED`."""
        return self.resource, self.event

    @property
    def handled(self) -> bool:
        """Whether the bot has anything to do for this kind of event."""
        return self.kind in HANDLED

    @property
    def person_id(self) -> str:
        """Who the event is about (the author, the submitter, the member)."""
        return str(self.data.get("personId", ""))

    @property
    def created(self) -> float | None:
        """When the message, submit or membership was made (epoch seconds); None if not told."""
        text = self.data.get("created")
        if not isinstance(text, str):
            return None
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
        return when.timestamp() if when.tzinfo is not None else None

    @property
    def room_id(self) -> str:
        """The space it happened in."""
        return str(self.data.get("roomId", ""))

    def to_json(self) -> str:
        """Serialised for the durable job store."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Event:
        """Read back what :meth:`to_json` stored."""
        return cls(**json.loads(text))
