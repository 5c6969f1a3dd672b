"""Bounded retries that honour ``Retry-After``, shared by the Webex and Instant Connect clients.

Usage::

    policy = RetryPolicy(max_attempts=4, max_wait=30.0)
    result = policy.call(lambda: send_once(), on_retry=log_it, service="webex")

``send_once`` raises an :class:`~bot.errors.UpstreamError`; retryable ones (see
:func:`bot.errors.is_retryable`) are tried again after a wait taken from ``Retry-After`` when the
service sent a usable one, else from an exponential backoff; both are jittered so that the worker
threads that failed together do not come back together. No wait exceeds ``max_wait`` and no call
makes more than ``max_attempts`` attempts, so nothing spins and nothing hangs.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.errors import UpstreamError, is_retryable
from bot.metrics import record

T = TypeVar("T")
log = logging.getLogger(__name__)

# At most this share is added to a Retry-After: clients told the same wait spread out, none early.
RETRY_AFTER_SPREAD = 0.1


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
    """How many attempts, how long to wait between them, and the ceiling on any single wait.

    ``jitter`` draws a number in [0, 1] for each wait (``random.random`` by default); tests pass
    a constant, as they pass ``sleep``, to know the waits exactly.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before attempt ``attempt + 1``, never above ``max_wait``.

        Without ``Retry-After``: "equal jitter", a uniform draw between half the exponential
        backoff and all of it. Equal rather than full jitter: with only a few attempts, a wait
        near zero (which full jitter allows) would spend one on a service that has just failed,
        while the random half still spreads the threads that failed at the same moment.
        With ``Retry-After``: what the service asked plus up to ``RETRY_AFTER_SPREAD`` of it,
        never less, so that threads told the same wait do not all return at once; ``max_wait``
        still caps it (a longer wish is cut short, and the attempts stay bounded in time).
        """
        draw = min(max(self.jitter(), 0.0), 1.0)
        if retry_after is not None:
            wanted = retry_after * (1.0 + RETRY_AFTER_SPREAD * draw)
        else:
            backoff = min(self.base_delay * 2 ** min(attempt - 1, 64), self.max_wait)
            wanted = backoff / 2 * (1.0 + draw)
        return min(wanted, self.max_wait)

    def call(
        self,
        send: Callable[[], T],
        on_retry: Callable[[UpstreamError, int, float], None] | None = None,
        retryable: Callable[[UpstreamError], bool] = is_retryable,
        *,
        service: str,
    ) -> T:
        """Run ``send`` until it succeeds, fails for good, or the attempts run out; a client
        whose ``send`` knows more (it asked the service) says which errors are worth another
        try with ``retryable``. Each attempt is timed and counted under ``service``."""
        attempt = 1
        while True:
            try:
                return record.upstream_call(service, send)
            except UpstreamError as error:
                if attempt >= self.max_attempts or not retryable(error):
                    raise
                wait = self.delay(attempt, error.retry_after)
                (on_retry or log_retry)(error, attempt, wait)
                self.sleep(wait)
                attempt += 1


def log_retry(error: UpstreamError, attempt: int, wait: float) -> None:
    """Say in the log that a call failed and will be tried again: its reference, and for a
    failure on the network the host and the cause."""
    log.warning("retrying after a failed call", extra={
        **error.log_fields(), "call_attempt": attempt, "wait_seconds": round(wait, 3)})
