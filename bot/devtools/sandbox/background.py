"""Work the sandbox does after it has answered, as the real services do: one thread takes
queued items in order (webhook deliveries, Twilio's status callbacks), and every waiter on the
journal looks again after each."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .journal import Journal

T = TypeVar("T")


class Background(Generic[T]):
    """One thread handling queued items in order until stopped."""

    def __init__(self, name: str, handle: Callable[[T], object], journal: Journal) -> None:
        self._name = name
        self._handle = handle
        self._journal = journal
        self._queue: queue.Queue[T | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def put(self, item: T) -> None:
        self._queue.put(item)

    @property
    def pending(self) -> bool:
        """Whether a queued item is still to be handled (or being handled)."""
        return self._queue.unfinished_tasks > 0

    def start(self) -> None:
        self._worker = threading.Thread(target=self._drain, name=self._name, daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Finish the items queued before, then stop the thread."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._handle(item)
            finally:
                self._queue.task_done()
                self._journal.changed()  # waiters on ``pending`` look again
        self._queue.task_done()  # the stop sentinel
