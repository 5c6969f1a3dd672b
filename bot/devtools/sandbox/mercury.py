"""The websocket ("Mercury") a bot without a public URL receives its events on.

One authorized socket per device: the client opens ``/mercury/api/v1/apps/wx2/registrations/
<device>/messages`` (404 for a device that is unknown or deleted), sends its token in an
``authorization`` frame (else close 4401), is told ``mercury.buffer_state`` (the JS SDK asks
for it with ``bufferStates=true`` in the query and waits for it before it counts as connected),
then receives one frame per event, answers each ``ping`` with a ``pong``, and acknowledges
frames.

Whether Webex sends the buffer state unasked is not known, so ``buffer_state`` plays each
answer: "asked" (the default: only to a socket whose query has ``bufferStates=true``),
"always", or "never". A revoked token (``refuse_token``) is closed with 4401 at authorization.
A second socket for a device takes over: the first is closed with 4000 "replaced"; a deleted
device's socket is closed with 4404.

Events that happen while a device has no socket are *missed* (Webex does not replay them, as
far as known). A frame sent but not acknowledged when its socket closes is *resent* when the
device's next socket authorizes, unless ``replay`` is off (then it is missed too): whether
Webex does this is not known (``webex_bot`` users report messages replayed after a restart),
so tests try both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from .activities import Space, activity, frame
from .delivery import Event
from .devices import Devices
from .journal import Journal

PATH = re.compile(r"^/mercury/api/v1/apps/wx2/registrations/([0-9a-f-]{36})/messages(\?.*)?$")
AUTH_TIMEOUT_SECONDS = 10.0
# The websockets library logs headers and frames at DEBUG: the bot's token is in both.
WIRE_LOG = logging.getLogger("bot.devtools.sandbox.mercury.wire")
WIRE_LOG.setLevel(logging.WARNING)
KINDS = ("refuse", "drop", "close", "duplicate", "delay", "silent")
BUFFER_STATES = ("asked", "always", "never")


@dataclass
class MercuryFault:
    """How the websocket misbehaves, for the next ``times`` handshakes, frames or pings (None:
    until cleared). "refuse": handshakes answered with HTTP ``code`` (503); "drop": the TCP
    connection cut before a frame; "close": the socket closed with ``code`` (1011) and
    ``reason`` before a frame; "duplicate": a frame sent twice; "delay": a frame sent
    ``seconds`` late; "silent": a ping left unanswered, and the socket mute from then on."""

    kind: str
    times: int | None = 1
    code: int | None = None
    reason: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        """Refuse faults that cannot be told apart or would do nothing."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        if self.kind == "delay" and self.seconds <= 0:
            raise ValueError("a delay needs seconds")


@dataclass
class _Socket:
    """One open connection: its device, whether it is authorized, whether it went mute."""

    connection: ServerConnection
    device: str
    asks_buffer_state: bool = False
    authorized: bool = False
    mute: bool = False


@dataclass
class _Device:
    """A device's frames: the sequence so far and those sent but not acknowledged."""

    sequence: int = 0
    unacknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)


class Mercury:
    """The websocket server, its faults and its record."""

    def __init__(self, journal: Journal, devices: Devices, token: str,
                 space_of: Callable[[str], Space], host: str,
                 stopping: threading.Event) -> None:
        self._journal = journal
        self._lock = journal.lock
        self._devices = devices
        self._expected_token = f"Bearer {token}"
        self._space_of = space_of
        self._host = host
        self._stopping = stopping
        self.replay = True
        self._buffer_state = "asked"
        self.refuse_token = False
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._sockets: list[_Socket] = []
        self._state: dict[str, _Device] = {}
        self._faults: list[MercuryFault] = []
        self._delayed = 0
        self.handshakes: list[dict[str, Any]] = []
        self.frames_sent: list[dict[str, Any]] = []
        self.acks: list[str] = []
        self.pongs: list[str] = []
        self.missed: list[dict[str, Any]] = []

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on a port the OS picks."""
        self._server = serve(self._handle, self._host, 0, process_request=self._handshake,
                             ping_interval=None, compression=None, logger=WIRE_LOG)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="sandbox-mercury", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close every socket at once."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._thread.join()
        self.close_all(1001, "going away")
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """The server's base URL, "ws://127.0.0.1:PORT"."""
        if self._server is None:
            raise RuntimeError("the websocket server is not running; call start() first")
        return f"ws://{self._host}:{self._server.socket.getsockname()[1]}"

    # control ------------------------------------------------------------------------------

    @property
    def buffer_state(self) -> str:
        """When ``mercury.buffer_state`` is sent: "asked", "always" or "never"."""
        return self._buffer_state

    @buffer_state.setter
    def buffer_state(self, mode: str) -> None:
        if mode not in BUFFER_STATES:
            raise ValueError(f"buffer_state must be one of {', '.join(BUFFER_STATES)}")
        self._buffer_state = mode

    def add_fault(self, fault: MercuryFault) -> MercuryFault:
        """Put a fault in force."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every websocket fault."""
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[MercuryFault]:
        """Copies of the faults still in force."""
        with self._lock:
            return [MercuryFault(**vars(fault)) for fault in self._faults]

    def close_all(self, code: int, reason: str) -> None:
        """Close every open socket now with this code."""
        with self._lock:
            sockets = list(self._sockets)
        for socket in sockets:
            socket.connection.close(code, reason)

    def close_device(self, device: str, code: int, reason: str) -> None:
        """Close the sockets of one device."""
        with self._lock:
            sockets = [s for s in self._sockets if s.device == device]
        for socket in sockets:
            socket.connection.close(code, reason)

    def connected(self) -> int:
        """How many authorized sockets are open."""
        with self._lock:
            return sum(1 for socket in self._sockets if socket.authorized)

    def settled(self) -> bool:
        """Whether every frame sent is acknowledged (none waiting to be resent or sent late)."""
        with self._lock:
            return self._delayed == 0 and not any(
                state.unacknowledged for state in self._state.values())

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            for record in (self.handshakes, self.frames_sent, self.acks, self.pongs,
                           self.missed):
                record.clear()
            self._journal.changed()

    # events -------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Send an event to every live device of the bot (or record it missed)."""
        described = activity(event, self._space_of(str(event.data.get("roomId"))))
        if described is None:
            return
        for device in self._devices.live_uuids:
            with self._lock:
                state = self._state.setdefault(device, _Device())
                state.sequence += 1
                sent = frame(described, state.sequence)
            self._deliver(device, sent)

    def emit_raw(self, raw: str | dict[str, Any]) -> None:
        """Send any text or JSON object to every authorized socket (malformed-frame tests)."""
        text = raw if isinstance(raw, str) else json.dumps(raw)
        for socket in self._authorized():
            with self._lock:
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    self._state.setdefault(socket.device, _Device()).unacknowledged[
                        raw["id"]] = raw
            with contextlib.suppress(ConnectionClosed):
                socket.connection.send(text)

    def _deliver(self, device: str, sent: dict[str, Any]) -> None:
        socket = self._socket_of(device)
        if socket is None or socket.mute:
            self._miss(sent)
            return
        fault = self._take_fault(("drop", "close", "duplicate", "delay"))
        kind = fault.kind if fault is not None else None
        if fault is not None and kind in ("drop", "close"):
            self._hold(device, sent)
            if kind == "drop":
                socket.connection.close_socket()
            else:
                socket.connection.close(fault.code or 1011, fault.reason)
            return
        if fault is not None and kind == "delay":
            with self._lock:
                self._delayed += 1
            threading.Thread(target=self._late, args=(device, sent, fault.seconds),
                             daemon=True).start()
            return
        self._send(socket, sent)
        if kind == "duplicate":
            self._send(socket, sent)

    def _late(self, device: str, sent: dict[str, Any], seconds: float) -> None:
        self._stopping.wait(seconds)
        try:
            socket = self._socket_of(device)
            if socket is None:
                self._hold(device, sent)
            else:
                self._send(socket, sent)
        finally:
            with self._lock:
                self._delayed -= 1
                self._journal.changed()

    def _send(self, socket: _Socket, sent: dict[str, Any]) -> None:
        """Put a frame on the wire; it waits for its acknowledgement (or a resend)."""
        self._hold(socket.device, sent)
        try:
            socket.connection.send(json.dumps(sent))
        except ConnectionClosed:
            return  # held: resent on the next socket, or dropped with this one
        with self._lock:
            self.frames_sent.append(sent)
            self._journal.changed()

    def _hold(self, device: str, sent: dict[str, Any]) -> None:
        with self._lock:
            self._state.setdefault(device, _Device()).unacknowledged[sent["id"]] = sent
            self._journal.changed()

    def _miss(self, sent: dict[str, Any]) -> None:
        with self._lock:
            self.missed.append(sent)
            self._journal.changed()

    # connections --------------------------------------------------------------------------

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse unknown devices (404) and injected refusals before the upgrade."""
        match = PATH.match(request.path)
        headers = {name: value for name, value in request.headers.raw_items()}
        if "Authorization" in headers:
            headers["Authorization"] = headers["Authorization"].split(" ", 1)[0] + " ***"
        status = 101
        if match is None or not self._devices.live(match.group(1)):
            status = 404
        elif (fault := self._take_fault(("refuse",))) is not None:
            status = fault.code or 503
        with self._lock:
            self.handshakes.append({"path": request.path, "status": status, "headers": headers})
            self._journal.changed()
        if status != 101:
            return connection.respond(status, "Device not found.\n" if status == 404
                                      else "Refused by the sandbox.\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        """Authorize, take the device over, resend what waits, then answer pings and acks."""
        path = connection.request.path if connection.request else ""
        match = PATH.match(path)
        assert match is not None
        asked = parse_qs(urlsplit(path).query).get("bufferStates") == ["true"]
        socket = _Socket(connection, match.group(1), asks_buffer_state=asked)
        with self._lock:
            self._sockets.append(socket)
        try:
            if not self._authorize(socket):
                connection.close(4401, "unauthorized")
                return
            self._take_over(socket)
            for message in connection:
                self._answer(socket, message)
        except ConnectionClosed:
            pass
        finally:
            self._gone(socket)

    def _authorize(self, socket: _Socket) -> bool:
        try:
            first = json.loads(socket.connection.recv(timeout=AUTH_TIMEOUT_SECONDS))
        except (TimeoutError, ValueError):
            return False
        token = (first.get("data") or {}).get("token") if isinstance(first, dict) else None
        return first.get("type") == "authorization" and token == self._expected_token \
            and not self.refuse_token

    def _take_over(self, socket: _Socket) -> None:
        with self._lock:
            replaced = [s for s in self._sockets
                        if s.device == socket.device and s.authorized and s is not socket]
            # Confirmed before any frame: a publisher sees the socket authorized only after.
            if self._buffer_state == "always" or (
                    self._buffer_state == "asked" and socket.asks_buffer_state):
                socket.connection.send(json.dumps({
                    "id": str(uuid.uuid4()), "data": {"eventType": "mercury.buffer_state"}}))
            socket.authorized = True
            waiting = list(self._state.setdefault(socket.device, _Device())
                           .unacknowledged.values())
            self._journal.changed()
        for old in replaced:
            old.connection.close(4000, "replaced")
        for sent in waiting:
            self._send(socket, sent)

    def _answer(self, socket: _Socket, message: str | bytes) -> None:
        try:
            received = json.loads(message)
        except ValueError:
            return
        if not isinstance(received, dict):
            return
        if received.get("type") == "ping":
            if self._take_fault(("silent",)) is not None:
                socket.mute = True
                return
            socket.connection.send(json.dumps({"id": received.get("id"), "type": "pong"}))
            with self._lock:
                self.pongs.append(str(received.get("id")))
                self._journal.changed()
        elif received.get("type") == "ack":
            frame_id = str(received.get("messageId"))
            with self._lock:
                self.acks.append(frame_id)
                self._state.setdefault(socket.device, _Device()).unacknowledged.pop(
                    frame_id, None)
                self._journal.changed()

    def _gone(self, socket: _Socket) -> None:
        with self._lock:
            self._sockets.remove(socket)
            others = any(s.device == socket.device and s.authorized for s in self._sockets)
            if socket.authorized and not others and not self.replay:
                waiting = self._state.setdefault(socket.device, _Device()).unacknowledged
                self.missed += waiting.values()  # never acknowledged, never sent again
                waiting.clear()
            self._journal.changed()

    # helpers ------------------------------------------------------------------------------

    def _socket_of(self, device: str) -> _Socket | None:
        with self._lock:
            return next((s for s in reversed(self._sockets)
                         if s.device == device and s.authorized), None)

    def _authorized(self) -> list[_Socket]:
        with self._lock:
            return [s for s in self._sockets if s.authorized]

    def _take_fault(self, kinds: tuple[str, ...]) -> MercuryFault | None:
        """Use up one application of the first fault of these kinds."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None
