"""Messages the bot sends while handling one event, numbered so a retry never sends one twice.

If a worker dies halfway through an event, the event is handled again from the start. Each send
is recorded (event id + its number) the moment Webex accepts it; on the retry, sends already
recorded are skipped and only the rest go out. What remains is the instant between Webex
accepting a message and the record being written, which no API without idempotency keys can close.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from bot.storage import Store
from bot.webex import WebexClient

RECORD_TTL = timedelta(days=8).total_seconds()  # outlives the store's dedupe retention


class Outbox:
    """Sends messages for the current event at most once each, across retries."""

    def __init__(self, webex: WebexClient, store: Store) -> None:
        self._webex = webex
        self._store = store
        self._current = threading.local()

    @contextlib.contextmanager
    def for_event(self, event_id: str) -> Iterator[None]:
        """Number the sends made inside the block after ``event_id``."""
        self._current.event_id, self._current.sent = event_id, 0
        try:
            yield
        finally:
            self._current.event_id = None

    def send(self, **message: Any) -> str:
        """Post a message (see ``WebexClient.send``) unless this retry already posted it."""
        event_id = getattr(self._current, "event_id", None)
        if event_id is None:
            return self._webex.send(**message)
        self._current.sent += 1
        key = f"sent:{event_id}:{self._current.sent}"
        already = self._store.get(key)
        if already is not None:
            return already
        message_id = self._webex.send(**message)
        self._store.set(key, message_id, RECORD_TTL)
        return message_id
