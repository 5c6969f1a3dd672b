"""The webhook front door, free of any web framework: verify, parse, store, acknowledge.

Usage::

    intake = Intake(settings.intake_config(), store, on_accepted=worker.notify)
    reply = intake.receive(raw_body, headers)      # -> Reply(status, body)

Only this decides the status Webex sees: 401 for a missing or wrong signature, 400 for a body
that is not a webhook, 413 for an oversized one, 503 when the store is down or the backlog of
unprocessed events is full (``MAX_BACKLOG``), and 200 for everything accepted, duplicate,
too old or deliberately ignored (the rules are :class:`bot.jobs.acceptance.Acceptance`'s, shared
with the websocket listener). Nothing slow happens here: the workers do the work after the 200.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.jobs.acceptance import Acceptance
from bot.jobs.storage import Store
from bot.metrics import record
from bot.secret import Secret
from bot.web.envelope import SIGNATURE_HEADER, MalformedEvent, parse_envelope, signature_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeConfig:
    """What the intake checks: the signature (None: unsigned, for local development; during a
    rotation the previous secret signs too), the body size, the backlog bound, and how old an
    event may be (the dedupe records' retention)."""

    webhook_secret: Secret | None
    max_body_bytes: int
    max_backlog: int
    retention_seconds: float
    previous_webhook_secret: Secret | None = None


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
        self._secrets = tuple(secret.reveal() for secret in (
            config.webhook_secret, config.previous_webhook_secret) if secret is not None)
        self._max_bytes = config.max_body_bytes
        self._acceptance = Acceptance(store, max_backlog=config.max_backlog,
                                      retention_seconds=config.retention_seconds,
                                      on_accepted=on_accepted, clock=clock)

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Decide the answer to a delivery, and count it by outcome."""
        reply = self._answer(body, headers)
        record.webhook(reply.status, reply.body.get("status") or reply.body.get("error", ""))
        return reply

    def _answer(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Decide the answer to a delivery; stores it durably before saying 200."""
        if len(body) > self._max_bytes:
            return Reply(413, {"error": "body too large"})
        if self._secrets:
            signature = _header(headers, SIGNATURE_HEADER)
            # Every secret is checked, each in constant time: how long the answer takes does
            # not tell which one matched, nor whether the first did.
            matches = [signature_matches(body, signature, secret) for secret in self._secrets]
            if not any(matches):
                log.warning("refused a webhook with a missing or wrong signature")
                return Reply(401, {"error": "invalid signature"})
        try:
            event = parse_envelope(body)
        except MalformedEvent as error:
            return Reply(400, {"error": str(error)})
        outcome = self._acceptance.take(event, source="webhook")
        if outcome.safe_to_acknowledge:
            return Reply(200, {"status": outcome.value})
        # 503: Webex counts it as a failed delivery and sends it again.
        return Reply(503, {"error": outcome.value})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever case the sender or a proxy gave it."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
