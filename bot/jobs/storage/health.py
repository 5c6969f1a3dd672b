"""Whether storage works right now, as this process last saw it.

Every engine call runs inside :meth:`Health.guard`, which turns any failure of the engine (not
only a lost connection: a full disk, a corrupt file, Redis refusing writes when it cannot
persist, is out of memory or is a read-only replica) into ``StoreUnavailable``, so every caller
handles one exception. It also says in the log when storage went away and when it came back,
once each per process, however many threads and polls hit the outage in between.

Only a write ends an outage: reads keep working on a full disk. And not every operation that
may write does: a claim of an empty queue, a fact already there, a lease already gone write
nothing, and so succeed while Redis refuses writes (``MISCONF``) or the disk is full. So while
storage is down, an operation that may have written is followed by the engine's probe, a write
that always writes (``ping``), and only the probe's success says storage is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """Storage cannot take the operation now; callers answer 503 so Webex redelivers later."""


class Health:
    """One engine instance's view of its storage: up, or down since when and why."""

    def __init__(
        self, engine: str, errors: tuple[type[BaseException], ...], probe: Callable[[], None]
    ) -> None:
        """``probe``: a write that always writes, guarded like any operation (the store's
        ``ping``); it must not wait for a lock an operation holds while it is guarded."""
        self._engine = engine
        self._errors = errors
        self._probe = probe
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._probing = threading.local()

    @contextmanager
    def guard(self, *, write: bool) -> Iterator[None]:
        """Run one engine operation, reporting its failure as StoreUnavailable."""
        try:
            yield
        except self._errors as error:
            self._went_away(error)
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        if write and self._down_since is not None and not getattr(self._probing, "on", False):
            self._probe_writes()

    def _probe_writes(self) -> None:
        """Say storage is back if the probe, which surely writes, succeeds; else stay down."""
        self._probing.on = True
        try:
            self._probe()
        except StoreUnavailable:
            return  # still refusing writes: the operation just wrote nothing
        finally:
            self._probing.on = False
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
