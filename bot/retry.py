"""Bounded retries that honour ``Retry-After``, shared by the Webex and Instant Connect clients.

Usage::

    policy = RetryPolicy(max_attempts=4, max_wait=30.0)
    result = policy.call(lambda: send_once(), on_retry=log_it)

``send_once`` raises an :class:`~bot.errors.UpstreamError`; retryable ones (see
:func:`bot.errors.is_retryable`) are tried again after a wait taken from ``Retry-After`` when the
service sent a usable one, else from an exponential backoff. No wait exceeds ``max_wait`` and no
call makes more than ``max_attempts`` attempts, so nothing spins and nothing hangs.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.errors import UpstreamError, is_retryable

T = TypeVar("T")
log = logging.getLogger(__name__)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long to wait between them, and the ceiling on any single wait."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before attempt ``attempt + 1``: the service's wish if given, else backoff."""
        wanted = retry_after if retry_after is not None else self.base_delay * 2 ** (attempt - 1)
        return min(wanted, self.max_wait)

    def call(
        self,
        send: Callable[[], T],
        on_retry: Callable[[UpstreamError, int, float], None] | None = None,
    ) -> T:
        """Run ``send`` until it succeeds, fails for good, or the attempts run out."""
        attempt = 1
        while True:
            try:
                return send()
            except UpstreamError as error:
                if attempt >= self.max_attempts or not is_retryable(error):
                    raise
                wait = self.delay(attempt, error.retry_after)
                (on_retry or log_retry)(error, attempt, wait)
                self.sleep(wait)
                attempt += 1


def log_retry(error: UpstreamError, attempt: int, wait: float) -> None:
    """Say in the log that a call failed and will be tried again, with its reference."""
    log.warning(
        "retrying after a failed call",
        extra={
            "service": error.service,
            "status": error.status,
            "tracking_id": error.tracking_id,
            "call_attempt": attempt,
            "wait_seconds": round(wait, 3),
        },
    )
