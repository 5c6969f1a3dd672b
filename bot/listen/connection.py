"""One open websocket to Webex: authorize, keep alive, read frames, acknowledge them.

Keep-alive as the JS SDK does it: a ``ping`` frame every ``ping_interval`` seconds, and the
connection counts as dead when its ``pong`` is ``pong_timeout`` late, even though the socket
is still open (a silent socket is the failure webex_bot users report most).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable

from websockets.sync.client import ClientConnection

from bot.listen.activity import Frame, read_frame
from bot.secret import Secret

log = logging.getLogger(__name__)
CONFIRMATIONS = ("mercury.buffer_state", "mercury.registration_status")


class Silent(Exception):
    """The socket is open but Webex says nothing: no pong came in time."""


class Connection:
    """Frames in, pings and acknowledgements out, over one websocket."""

    def __init__(
        self,
        socket: ClientConnection,
        *,
        ping_interval: float,
        pong_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket = socket
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self._clock = clock
        self._next_ping = clock() + ping_interval
        self._pong_due: float | None = None
        self._awaited: str | None = None
        self._sequence: int | None = None
        self._early: list[Frame] = []

    def authorize(self, token: Secret, timeout: float) -> bool:
        """Send the token in the first frame, then wait up to ``timeout`` for Webex to say the
        socket is ready: ``mercury.buffer_state``, which the socket's URL asks for, as the JS
        SDK's does (or ``mercury.registration_status``, its answer to the shared mode's
        question). Any other frame coming first shows the socket authorized as well; it is
        kept for receive(), in order. False when nothing came in time: the socket is used all
        the same, since a refused token closes it and a dead one misses its pong."""
        self._send({"id": str(uuid.uuid4()), "type": "authorization",
                    "data": {"token": f"Bearer {token.reveal()}"}})
        until = self._clock() + timeout
        while (left := until - self._clock()) > 0:
            try:
                frame = read_frame(self._socket.recv(timeout=left))
            except TimeoutError:
                break
            if frame.event_type not in CONFIRMATIONS:
                self._early.append(frame)
            return True
        return False

    def receive(self, timeout: float) -> Frame | None:
        """The next frame within ``timeout`` seconds, or None; pings as due; Silent if no pong."""
        if self._early:
            return self._early.pop(0)
        until = self._clock() + timeout
        while True:
            now = self._clock()
            if self._pong_due is not None and now >= self._pong_due:
                raise Silent(f"no pong within {self._pong_timeout:g} s")
            if self._pong_due is None and now >= self._next_ping:
                self._ping()
                continue
            if now >= until:
                return None
            wake = min(until, self._pong_due if self._pong_due is not None else self._next_ping)
            try:
                text = self._socket.recv(timeout=max(wake - now, 0.0))
            except TimeoutError:
                continue
            frame = read_frame(text)
            if frame.type == "pong":
                if frame.id == self._awaited:
                    self._pong_due = self._awaited = None
                continue
            self._check_sequence(frame.sequence)
            return frame

    def ack(self, frame_id: str) -> None:
        """Tell Webex the frame is handled (after the event is stored, never before)."""
        self._send({"type": "ack", "messageId": frame_id})

    def close(self) -> None:
        """Close the socket (safe from another thread)."""
        self._socket.close()

    def _ping(self) -> None:
        self._awaited = str(uuid.uuid4())
        self._send({"id": self._awaited, "type": "ping"})
        now = self._clock()
        self._pong_due = now + self._pong_timeout
        self._next_ping = now + self._ping_interval

    def _send(self, message: dict[str, object]) -> None:
        self._socket.send(json.dumps(message))

    def _check_sequence(self, number: int | None) -> None:
        """Say in the log when Webex's sequence numbers skip: frames were lost on the way."""
        if number is None:
            return
        if self._sequence is not None and number > self._sequence + 1:
            log.warning("websocket frames are missing: the sequence skipped",
                        extra={"missing": number - self._sequence - 1})
        self._sequence = max(number, self._sequence or 0)
