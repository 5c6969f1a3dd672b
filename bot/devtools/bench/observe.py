"""When the sandbox recorded each request, seen from outside it.

The sandbox's ``Recorded`` carries no timestamp, so a watcher thread waits on ``sb.wait_for``
and stamps every newly recorded request with ``time.monotonic()`` the moment it appears
(within a scheduler wake-up of the record itself). Usage::

    with Recorder(box) as recorder:
        mark = recorder.mark()
        ...                                          # the bot does its work
        done = recorder.wait_posts({room_id: 1}, timeout=30)   # room -> stamp of its 1st post
        recorder.quiet(0.5)                          # the bot's last calls are in
        recorder.requests_since(mark)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.journal import Recorded

WATCH_SLICE = 0.25


class Recorder:
    """Timestamps of the sandbox's records, and the bot's messages indexed by space."""

    def __init__(self, box: Sandbox) -> None:
        self._box = box
        self._stamps: list[float] = []
        self._posts: dict[str, list[float]] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-recorder", daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join()

    def mark(self) -> int:
        """How many requests have been recorded so far: a phase boundary."""
        self.settle()
        return len(self._stamps)

    def settle(self) -> None:
        """Wait until every request the sandbox has recorded so far is stamped."""
        target = len(self._box.requests)
        with self._changed:
            self._changed.wait_for(lambda: len(self._stamps) >= target)

    def quiet(self, period: float) -> None:
        """Wait until the sandbox has recorded nothing new for ``period`` seconds."""
        with self._changed:
            while True:
                count = len(self._stamps)
                if not self._changed.wait_for(self._stamped_other_than(count), period):
                    return

    def requests_since(self, mark: int) -> list[tuple[float, Recorded]]:
        """The stamped requests after ``mark``, oldest first."""
        self.settle()
        with self._changed:
            stamps = self._stamps[mark:]
        return list(zip(stamps, self._box.requests[mark:mark + len(stamps)], strict=True))

    def wait_posts(self, wanted: Mapping[str, int], timeout: float) -> dict[str, float]:
        """Block until each space has its n-th message from the bot; the stamp of that message."""
        def ready() -> bool:
            return all(len(self._posts.get(room, ())) >= n for room, n in wanted.items())

        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                missing = [room for room, n in wanted.items()
                           if len(self._posts.get(room, ())) < n]
                raise TimeoutError(f"{len(missing)} of {len(wanted)} interactions unfinished "
                                   f"after {timeout:.0f} s")
            return {room: self._posts[room][n - 1] for room, n in wanted.items()}

    # Predicates for ``wait_for`` that bind the count now, not when the loop has moved on.

    def _stamped_other_than(self, n: int) -> Callable[[], bool]:
        return lambda: len(self._stamps) != n

    def _recorded_more_than(self, n: int) -> Callable[[], bool]:
        return lambda: len(self._box.requests) > n

    def _watch(self) -> None:
        while not self._stopping.is_set():
            seen = len(self._stamps)
            try:
                self._box.wait_for(self._recorded_more_than(seen), WATCH_SLICE)
            except TimeoutError:
                continue
            now = time.monotonic()
            fresh = self._box.requests[seen:]
            with self._changed:
                self._stamps.extend([now] * len(fresh))
                for recorded in fresh:
                    room = _room_posted_to(recorded)
                    if room is not None:
                        self._posts.setdefault(room, []).append(now)
                self._changed.notify_all()


def _room_posted_to(recorded: Recorded) -> str | None:
    """The space of a message the bot posted, or None for any other request."""
    if recorded.method != "POST" or recorded.path != "/v1/messages":
        return None
    body = recorded.json if isinstance(recorded.json, dict) else {}
    room = body.get("roomId")
    return room if isinstance(room, str) else None
