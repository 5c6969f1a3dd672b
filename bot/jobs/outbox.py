"""Messages the bot sends while handling one event, numbered so a retry never sends one twice.

If a worker dies halfway through an event, the event is handled again from the start. Each send
is recorded (event id + its number) the moment Webex accepts it; on the retry, sends already
recorded are skipped and only the rest go out.

That leaves the gap between Webex creating a message and the record being written: a worker
killed inside it (under load the gap spans Webex's own processing and a storage write, so a
killed busy process is nearly always inside it for some event) would make the retry post the
message again. So on a retry, a send with no record first looks for its message: a message of
the bot's with the same first line, in the same thread, created since the event was accepted,
that no send has claimed (every send claims the id it got, so another event's identical reply
is never taken for this one's). A message to a space is looked for in that space, one to a
person in the bot's 1:1 space with them (``GET /messages/direct``, which needs no room id).

Webex lets a bot list every message of its 1:1 spaces, but in a group space only those that
mention the bot, which its own messages never do. So a message to a group space whose send was
never recorded cannot be found, and the retry posts it again: the one case where a person may
see a message twice. A lookup Webex could not answer (429, 5xx) proves nothing, so the event is
left to be retried later, except on its last try, which posts rather than say nothing.
Deliveries outside Webex (a guest's email or text) are marked as started before they go: a try
that finds the mark with no reference asks the service where it can (Twilio lists the messages it
created) and otherwise says the delivery may have happened rather than make it twice.

The first try, the common case, costs two store writes per send and no lookup (three for a
delivery outside Webex). A record that
cannot be written because storage just went away is retried for a while before the send counts
as in doubt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.errors import Unconfirmed, UpstreamError, is_retryable
from bot.jobs.storage import Fact, Store, patiently
from bot.upstream.webex import Webex

# The store keys of the outbox, kept far beyond the last retry of any event: each send of an
# event by its number (the message id or reference it got), and each message's claiming send.
SENT = Fact("sent", timedelta(days=8).total_seconds())
SENT_MESSAGE = Fact("sent-message", SENT.lifetime)
CLOCK_SKEW = 120.0  # how far Webex's clock may trail ours when comparing creation times
RECENT_LIMIT = 50  # messages of the space looked at when a send is in doubt
RECORD_PATIENCE = 30.0  # seconds a record of a send already made waits for storage to be back
STARTED = "started:"  # a delivery outside Webex began at this epoch time; no reference yet


class Outbox:
    """Hands out the sender of each event; shared by every worker thread."""

    def __init__(self, webex: Webex, store: Store) -> None:
        self._webex = webex
        self._store = store

    def for_event(
        self, event_id: str, *, retry: bool, since: float, last_attempt: bool = False
    ) -> EventSender:
        """The sender for one try at an event; ``since`` is when the event was accepted."""
        return EventSender(self._webex, self._store, event_id, retry=retry, since=since,
                           last_attempt=last_attempt)


class EventSender:
    """Sends the messages of one try at one event, each at most once across its retries.

    Used by one thread for one event: the sends are numbered in the order they are made.
    """

    def __init__(
        self, webex: Webex, store: Store, event_id: str, *, retry: bool, since: float,
        last_attempt: bool = False,
    ) -> None:
        self._webex = webex
        self._store = store
        self._event_id = event_id
        self._retry = retry
        self._since = since
        self._last_attempt = last_attempt
        self._sent = 0

    def once(
        self, deliver: Callable[[], str], *, service: str,
        find: Callable[[float], str | None] | None = None,
    ) -> str:
        """Deliver something outside Webex (an email, a text message) unless an earlier try did;
        ``deliver`` returns its reference, recorded the moment it succeeds.

        The delivery is marked as started first. A try that finds the mark without a reference
        died between the two: ``find(since)`` (the reference of what was delivered since, or
        None) decides where the service can be asked, as Twilio can; where it cannot (a mail
        server), the delivery may have happened and is not made again: ``Unconfirmed``."""
        key = self._next_key()
        recorded = self._store.get(key)
        if recorded is not None and not recorded.startswith(STARTED):
            return recorded
        if recorded is not None:
            if find is None:
                raise Unconfirmed(service, detail="the bot stopped while sending it")
            found = find(float(recorded.removeprefix(STARTED)))
            if found is not None:
                self._remember(key, found, only_if_absent=False)
                return found
        self._remember(key, f"{STARTED}{time.time()}", only_if_absent=False)
        try:
            reference = deliver()
        except Unconfirmed:
            raise  # the mark stays: a later try must not deliver blindly either
        except UpstreamError:
            patiently(lambda: self._store.delete(key), RECORD_PATIENCE)  # surely not delivered
            raise
        self._remember(key, reference, only_if_absent=False)
        return reference

    def send(self, **message: Any) -> str:
        """Post a message (see ``Webex.send``) unless an earlier try already posted it."""
        key = self._next_key()
        message_id = self._store.get(key)
        if message_id is not None:
            return message_id
        if self._retry:
            message_id = self._find_unrecorded(key, message)
        if message_id is None:
            message_id = self._webex.send(**message)
            self._remember(SENT_MESSAGE.key(message_id), key, only_if_absent=True)
        self._remember(key, message_id, only_if_absent=False)
        return message_id

    def _next_key(self) -> str:
        """The record key of the next send, numbered in the order this try makes them."""
        self._sent += 1
        return SENT.key(self._event_id, str(self._sent))

    def _remember(self, key: str, value: str, *, only_if_absent: bool) -> None:
        """Record a send that happened, waiting out a short outage rather than forgetting it."""
        write = self._store.put_if_absent if only_if_absent else self._store.set
        patiently(lambda: write(key, value, SENT.lifetime), RECORD_PATIENCE)

    def _find_unrecorded(self, key: str, message: dict[str, Any]) -> str | None:
        """The id of this send's message if Webex has it though it was never recorded."""
        room_id, person_id = message.get("room_id"), message.get("to_person_id")
        parent_id = message.get("parent_id")
        try:
            if room_id is not None:
                recent = self._webex.recent_messages(room_id, parent_id, RECENT_LIMIT)
            elif person_id is not None:
                recent = self._webex.direct_messages(person_id, parent_id, RECENT_LIMIT)
            else:
                return None
        except UpstreamError as error:
            if is_retryable(error) and not self._last_attempt:
                raise  # Webex is struggling: better the whole event later than a message twice
            # A group space, which a bot may not list; no 1:1 space yet (so nothing was posted
            # there); or the last try: post.
            return None
        me = self._webex.me().id
        first_line = _first_line(message.get("markdown"))
        for item in reversed(recent):  # oldest first
            if (item.get("personId") != me or item.get("parentId") != parent_id
                    or _first_line(item.get("markdown")) != first_line
                    or _created(item) < self._since - CLOCK_SKEW):
                continue
            owner = self._store.put_if_absent(SENT_MESSAGE.key(item["id"]), key,
                                             SENT_MESSAGE.lifetime)
            if owner is None or owner == key:
                return str(item["id"])
        return None


def _first_line(markdown: object) -> str:
    return str(markdown or "").split("\n", 1)[0]


def _created(item: dict[str, Any]) -> float:
    """A message's creation time in epoch seconds; 0 when Webex gave none readable."""
    try:
        return datetime.fromisoformat(str(item.get("created", ""))).timestamp()
    except ValueError:
        return 0.0
