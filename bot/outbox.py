"""Messages the bot sends while handling one event, numbered so a retry never sends one twice.

If a worker dies halfway through an event, the event is handled again from the start. Each send
is recorded (event id + its number) the moment Webex accepts it; on the retry, sends already
recorded are skipped and only the rest go out.

That leaves the gap between Webex creating a message and the record being written: a worker
killed inside it (under load, the gap spans Webex's own processing and a storage write, so a
killed busy process is nearly always inside it for some event) would make the retry post the
message again. So each send first marks its number "pending"; a retry that finds the mark looks
for the message in the space before posting: a message of the bot's, newer than the mark, that no
other send has claimed (every send claims the id it got). Webex lets a bot list the messages of
1:1 spaces but not of group spaces (only those that mention it), so in a group space, or for a
message addressed by person id, the retry still posts again: at least once, never lost.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from bot.errors import UpstreamError
from bot.storage import Store
from bot.webex import WebexClient

RECORD_TTL = timedelta(days=8).total_seconds()  # outlives the store's dedupe retention
PENDING = "pending:"
CLOCK_SKEW = 120.0  # how far Webex's clock may trail ours when comparing creation times
RECENT_LIMIT = 50  # messages of the space looked at when a send is in doubt


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
        record = self._store.get(key)
        if record is not None and not record.startswith(PENDING):
            return record
        if record is None:
            self._store.set(key, f"{PENDING}{time.time()}", RECORD_TTL)
        else:  # an earlier attempt got as far as sending: did Webex take it?
            found = self._find_unrecorded(key, message, float(record[len(PENDING):]))
            if found is not None:
                self._store.set(key, found, RECORD_TTL)
                return found
        message_id = self._webex.send(**message)
        self._store.put_if_absent(_claim_key(message_id), key, RECORD_TTL)
        self._store.set(key, message_id, RECORD_TTL)
        return message_id

    def _find_unrecorded(self, key: str, message: dict[str, Any], marked_at: float) -> str | None:
        """The id of this send's message if Webex has it though it was never recorded."""
        room_id = message.get("room_id")
        if room_id is None:
            return None  # addressed by person id: the 1:1 space is not known here
        parent_id = message.get("parent_id")
        try:
            recent = self._webex.recent_messages(room_id, parent_id, RECENT_LIMIT)
        except UpstreamError:
            return None  # a group space, which a bot may not list: post again
        me = self._webex.me().id
        first_line = str(message.get("markdown", "")).split("\n", 1)[0]
        for item in reversed(recent):  # oldest first
            if (item.get("personId") != me or item.get("parentId") != parent_id
                    or str(item.get("markdown", "")).split("\n", 1)[0] != first_line
                    or _created(item) < marked_at - CLOCK_SKEW):
                continue
            owner = self._store.put_if_absent(_claim_key(item["id"]), key, RECORD_TTL)
            if owner is None or owner == key:
                return str(item["id"])
        return None


def _claim_key(message_id: str) -> str:
    return f"sent-message:{message_id}"


def _created(item: dict[str, Any]) -> float:
    """A message's creation time in epoch seconds; 0 when Webex gave none readable."""
    try:
        return datetime.fromisoformat(str(item.get("created", ""))).timestamp()
    except ValueError:
        return 0.0
