"""The webhook front door, free of any web framework: verify, parse, store, acknowledge.

Usage::

    intake = Intake(settings.intake_config(), store, on_accepted=worker.notify)
    reply = intake.receive(raw_body, headers)      # -> Reply(status, body)

Only this decides the status Webex sees: 401 for a missing or wrong signature, 400 for a body
that is not a webhook, 413 for an oversized one, 503 when the store is down or the backlog of
unprocessed events is full (``MAX_BACKLOG``), and 200 for everything accepted, duplicate or
deliberately ignored. Nothing slow happens here: the work is done by the workers after the 200.

An event created longer ago than ``DEDUPE_RETENTION`` is acknowledged and dropped: its dedupe
record may be gone, so a captured delivery replayed later must not be processed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.jobs.storage import BacklogFull, Store, StoreUnavailable
from bot.secret import Secret
from bot.web.envelope import SIGNATURE_HEADER, MalformedEvent, parse_envelope, signature_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeConfig:
    """What the intake checks: the signature (None: unsigned, for local development), the body
    size, the backlog bound, and how old an event may be (the dedupe records' retention)."""

    webhook_secret: Secret | None
    max_body_bytes: int
    max_backlog: int
    retention_seconds: float


@dataclass(frozen=True)
class Reply:
    """The HTTP answer to one delivery."""

    status: int
    body: dict[str, str] = field(default_factory=dict)


class Intake:
    """Turns one webhook delivery into at most one durable job."""

    def __init__(
        self,
        config: IntakeConfig,
        store: Store,
        on_accepted: Callable[[], None] = lambda: None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retention = config.retention_seconds
        self._clock = clock
        self._secret = config.webhook_secret
        self._max_bytes = config.max_body_bytes
        self._max_backlog = config.max_backlog
        self._store = store
        self._on_accepted = on_accepted

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Decide the answer to a delivery; stores it durably before saying 200."""
        if len(body) > self._max_bytes:
            return Reply(413, {"error": "body too large"})
        if self._secret is not None:
            signature = _header(headers, SIGNATURE_HEADER)
            if not signature_matches(body, signature, self._secret.reveal()):
                log.warning("refused a webhook with a missing or wrong signature")
                return Reply(401, {"error": "invalid signature"})
        try:
            event = parse_envelope(body)
        except MalformedEvent as error:
            return Reply(400, {"error": str(error)})
        context = {"event_id": event.data_id, "resource": event.resource, "event": event.event}
        if not event.handled:
            log.info("ignored an event the bot does not handle", extra=context)
            return Reply(200, {"status": "ignored"})
        created = event.created
        if created is not None and created < self._clock() - self._retention:
            log.warning("dropped an event older than DEDUPE_RETENTION: a replay cannot be told "
                        "apart from a new event", extra={**context, "age_seconds": round(
                            self._clock() - created)})
            return Reply(200, {"status": "too old"})
        try:
            accepted = self._store.accept(
                event.data_id, event.resource, event.to_json(), self._max_backlog
            )
        except BacklogFull:
            # Bounded queue: refuse rather than grow; Webex counts this as a failed delivery.
            log.error("backlog full; refusing an event", extra={**context,
                                                                "limit": self._max_backlog})
            return Reply(503, {"error": "busy"})
        except StoreUnavailable:
            log.error("storage unavailable; asking Webex to deliver again", extra=context)
            return Reply(503, {"error": "storage unavailable"})
        if not accepted:
            log.info("dropped a duplicate delivery", extra=context)
            return Reply(200, {"status": "duplicate"})
        log.info("accepted an event", extra=context)
        self._on_accepted()
        return Reply(200, {"status": "accepted"})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever case the sender or a proxy gave it."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
