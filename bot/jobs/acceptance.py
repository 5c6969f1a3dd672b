"""Taking one event into the durable queue: the rules every event source shares.

The webhook intake and the websocket listener both call :meth:`Acceptance.take`; it decides
whether an event becomes a job and says why not. Webhooks turn the outcome into an HTTP status,
the listener into "acknowledge the frame or not". An event arriving both ways (``EVENTS=both``)
is stored once: the dedupe key is the event's ``data.id`` whichever way it came.

An event created longer ago than the dedupe retention is dropped: its dedupe record may be gone,
so a captured delivery replayed later must not be processed again.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from bot.events import Event
from bot.jobs.storage import BacklogFull, Store, StoreUnavailable
from bot.metrics import record

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What became of an event; ``stored`` says whether it is safe to acknowledge."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    TOO_OLD = "too old"
    BUSY = "busy"
    STORAGE_UNAVAILABLE = "storage unavailable"

    @property
    def stored(self) -> bool:
        """True when the event is durably handled (queued now, before, or deliberately not)."""
        return self not in (Outcome.BUSY, Outcome.STORAGE_UNAVAILABLE)


class Acceptance:
    """Turns an event into at most one durable job."""

    def __init__(
        self,
        store: Store,
        *,
        max_backlog: int,
        retention_seconds: float,
        on_accepted: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._max_backlog = max_backlog
        self._retention = retention_seconds
        self._on_accepted = on_accepted
        self._clock = clock

    def take(self, event: Event, *, source: str) -> Outcome:
        """Store the event unless it is a duplicate, ignored, too old, or cannot be stored now."""
        context = {"event_id": event.data_id, "resource": event.resource, "event": event.event,
                   "source": source}
        if not event.handled:
            log.info("ignored an event the bot does not handle", extra=context)
            return Outcome.IGNORED
        created = event.created
        if created is not None and created < self._clock() - self._retention:
            log.warning("dropped an event older than DEDUPE_RETENTION: a replay cannot be told "
                        "apart from a new event", extra={**context, "age_seconds": round(
                            self._clock() - created)})
            return Outcome.TOO_OLD
        try:
            accepted = self._store.accept(
                event.data_id, event.resource, event.to_json(), self._max_backlog
            )
        except BacklogFull:
            # Bounded queue: refuse rather than grow; the source delivers it again later.
            log.error("backlog full; refusing an event",
                      extra={**context, "limit": self._max_backlog})
            return Outcome.BUSY
        except StoreUnavailable:
            log.error("storage unavailable; the event must be delivered again", extra=context)
            return Outcome.STORAGE_UNAVAILABLE
        if not accepted:
            log.info("dropped a duplicate delivery", extra=context)
            return Outcome.DUPLICATE
        log.info("accepted an event", extra=context)
        record.event(source, event.resource)
        self._on_accepted()
        return Outcome.ACCEPTED
