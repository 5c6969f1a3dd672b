"""Whether storage works right now, as this process last saw it.

Every engine call runs inside :meth:`Health.guard`, which turns any failure of the engine (not
only a lost connection: a full disk, a corrupt file, Redis refusing writes when it cannot
persist, is out of memory or is a read-only replica) into ``StoreUnavailable``, so every caller
handles one exception. It also says in the log when storage went away and when it came back,
once each per process, however many threads and polls hit the outage in between. Only a write
that succeeds ends an outage: reads can keep working on a full disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """Storage cannot take the operation now; callers answer 503 so Webex redelivers later."""


class Health:
    """One engine instance's view of its storage: up, or down since when and why."""

    def __init__(self, engine: str, errors: tuple[type[BaseException], ...]) -> None:
        self._engine = engine
        self._errors = errors
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @contextmanager
    def guard(self, *, write: bool) -> Iterator[None]:
        """Run one engine operation, reporting its failure as StoreUnavailable."""
        try:
            yield
        except self._errors as error:
            self._went_away(error)
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        if write and self._down_since is not None:
            self._came_back()

    def _went_away(self, error: BaseException) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        log.error("storage went away: webhooks get 503 and workers wait until it is back",
                  extra={"engine": self._engine, "error_type": type(error).__name__,
                         "error": str(error)[:300]})

    def _came_back(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down_for, self._down_since = time.monotonic() - self._down_since, None
        log.warning("storage is back: catching up", extra={
            "engine": self._engine, "outage_seconds": round(down_for, 1)})
