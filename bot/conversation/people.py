"""People the bot talks to, remembered for a few minutes so each message costs no extra lookup."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bot.upstream.webex import Person, Webex

MAX_ENTRIES = 10_000


class PeopleDirectory:
    """A small time-limited cache in front of ``GET /people/{id}``."""

    def __init__(
        self,
        webex: Webex,
        ttl_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._webex = webex
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, Person]] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, person_id: str) -> Person:
        """The person's profile, from memory when fresh; fetched once even if asked at once."""
        cached = self._fresh(person_id)
        if cached is not None:
            return cached
        with self._lock:
            loading = self._loading.setdefault(person_id, threading.Lock())
        with loading:
            cached = self._fresh(person_id)  # another thread may just have fetched it
            if cached is not None:
                return cached
            person = self._webex.person(person_id)
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[person_id] = (self._clock(), person)
                self._loading.pop(person_id, None)
        return person

    def _fresh(self, person_id: str) -> Person | None:
        with self._lock:
            cached = self._entries.get(person_id)
        if cached and self._clock() - cached[0] < self._ttl:
            return cached[1]
        return None
