"""The websocket listener: events without a public URL, into the same durable queue.

Usage::

    listener = Listener(config, token, DeviceRegistry(token, u2c_url), webex, store, acceptance)
    listener.run()            # until stop(); python -m bot listen runs it beside the workers

What it promises, and how:

- *Nothing acknowledged is lost.* A frame is acknowledged only once its event is stored (or
  is one the bot ignores). When the event cannot be stored or looked up now, the frame waits,
  with the frames after it, and is tried again with backoff; past ``max_pending`` waiting
  frames the socket is closed unacknowledged rather than holding more in memory.
- *Nothing twice.* The event is stored under the id a webhook would carry, so a frame sent
  twice, a restart, or webhooks running beside the websocket (``EVENTS=both``) store it once.
- *One device, one listener.* The device is remembered in the store and reused; a new one is
  registered only when Webex answers 404 (or closes with 4404). A lease in the store lets one
  listener per bot hold the socket; a "replaced" close (another connection took the device)
  makes this one back off.
- *Gaps are said, and caught up where Webex allows.* The store keeps when the listener last
  heard Webex; after a reconnect or restart the log says what it could not have seen, and the
  1:1 messages and mentions of the gap are listed and stored (:mod:`bot.listen.catch_up`).
- *A refused token is not a network problem.* A process starting up stops at once on a refused
  token (``bot.service.check_token``); later, a refusal (401/403, or the socket closed
  with 4401, 4400 or 4403) is an error line per attempt, ``refused_wait`` apart.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from bot.errors import NotAuthorized, UpstreamError
from bot.jobs.acceptance import Acceptance, Outcome
from bot.jobs.storage import Fact, Store, StoreUnavailable
from bot.listen.activity import Frame
from bot.listen.catch_up import CatchUpLimits, catch_up
from bot.listen.clusters import Clusters
from bot.listen.connection import Connection, Silent
from bot.listen.resolve import Resolver
from bot.metrics import record
from bot.secret import Secret
from bot.upstream.devices import Device, DeviceGone, DeviceRegistry
from bot.upstream.retry import RetryPolicy
from bot.upstream.webex import WebexClient

log = logging.getLogger(__name__)
# The store keys of the websocket: the registered device (kept until Webex forgets it), the
# one-listener lease (for LISTEN_LEASE_SECONDS) and when a listener last read the socket.
DEVICE = Fact("listen:device", None)
LEASE = Fact("listen:lease", None)
HEARD = Fact("listen:heard-at", None)
REPLACED = 4000  # another connection for the same device took over
DEVICE_NOT_FOUND = 4404
REFUSALS = {
    4400: "Webex closed the websocket as a bad request (4400), which the JS SDK reads as a "
          "service account's token: it cannot hold a websocket. WEBEX_BOT_TOKEN must be a "
          "bot's token (or use webhooks)",
    4401: "Webex refused the bot's token on the websocket (4401): it was revoked or is "
          "invalid. Set a valid one in WEBEX_BOT_TOKEN",
    4403: "Webex forbade the websocket (4403): the account of WEBEX_BOT_TOKEN is not "
          "entitled to Webex messaging",
}
"""Closes that no reconnect mends (the JS SDK gives up on 4400 and 4403), and what they mean."""
SOCKET_QUERY = {"outboundWireFormat": "text", "bufferStates": "true", "aliasHttpStatus": "true"}
"""What the JS SDK asks of the socket: text frames, a buffer state after the authorization, and
HTTP statuses in errors."""
REREGISTRATIONS = 3  # new devices in a row before backing off
# The websockets library logs headers and frames at DEBUG (the token is in both) and each
# connection at INFO: only its warnings are worth a line.
WIRE_LOG = logging.getLogger("bot.listen.wire")
WIRE_LOG.setLevel(logging.WARNING)


class Replaced(Exception):
    """Webex closed the socket because another connection took the device."""


class Refused(Exception):
    """Webex refused the socket for its token or account; the message says what it means."""


@dataclass(frozen=True)
class ListenConfig:
    """Where the device is found, how the socket is kept (keep-alive, backoff, lease), the
    catch-up after a gap, and the proxy."""

    u2c_url: str = "https://u2c.wbx2.com/u2c/api/v1"  # the service catalog
    ping_interval: float = 15.0
    pong_timeout: float = 14.0
    backoff_base: float = 1.0
    backoff_cap: float = 240.0
    replaced_wait: float = 60.0
    refused_wait: float = 300.0  # after a refused token: someone has to change it
    lease_seconds: float = 15.0  # a killed listener's successor waits at most this long
    open_timeout: float = 10.0  # for the socket to open, then for its buffer state
    max_pending: int = 1000
    catch_up: CatchUpLimits = field(default_factory=CatchUpLimits)
    proxy: str | None = field(default=None, repr=False)  # may carry a password


class Listener:
    """Holds the bot's websocket and turns its frames into stored events."""

    def __init__(
        self,
        config: ListenConfig,
        token: Secret,
        registry: DeviceRegistry,
        webex: WebexClient,
        store: Store,
        acceptance: Acceptance,
        *,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``owner``: the worker process's id, whose death frees the lease (``release-jobs``)."""
        self._config = config
        self._token = token
        self._registry = registry
        self._webex = webex
        self._store = store
        self._acceptance = acceptance
        self._resolver = Resolver(webex)
        self._clusters = Clusters(registry)
        self._clock = clock
        self._jitter = jitter
        self._backoff = RetryPolicy(base_delay=config.backoff_base, max_wait=config.backoff_cap,
                                    jitter=jitter)
        self._owner = _lease_holder(owner or str(uuid.uuid4()))
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._standing_by = False
        self._connection: Connection | None = None
        self._pending: list[Frame] = []
        self._retry_at = 0.0
        self._failures = 0
        self._catching_up: threading.Thread | None = None
        self.counts: Counter[str] = Counter()
        """Frames received, events stored, duplicates, ignored, acknowledged, reconnects..."""

    # lifecycle ----------------------------------------------------------------------------

    def run(self) -> None:
        """Listen until stop(), reconnecting with capped, jittered backoff."""
        failures = registrations = 0
        while not self._stopping.is_set():
            self._standing_by = not self._hold_lease()
            if self._standing_by:
                self._stopping.wait(self._config.lease_seconds / 3)
                continue
            wait: float | None = None
            try:
                self._listen(self._device())
            except DeviceGone:
                self._store.delete(DEVICE.key())
                registrations += 1
                log.warning("Webex no longer knows the bot's device; registering a new one")
                if registrations <= REREGISTRATIONS:
                    continue
            except Replaced:
                log.warning("another connection took the bot's device (is a second listener "
                            "running for this bot?); backing off")
                wait = self._config.replaced_wait * (0.5 + self._jitter() / 2)
            except NotAuthorized as error:
                wait = self._refused("Webex refused the bot's token (WEBEX_BOT_TOKEN): "
                                     + error.describe())
            except Refused as error:
                wait = self._refused(str(error))
            except (ConnectionClosed, InvalidHandshake, OSError, Silent) as error:
                log.warning("the websocket failed; reconnecting", extra={"reason": _why(error)})
            except UpstreamError as error:
                log.error("could not reach Webex for the websocket; retrying",
                          extra={"reason": error.describe()})
            except StoreUnavailable:
                log.error("storage unavailable; the websocket waits for it")
            if self._connected.is_set():
                failures = registrations = 0
                self._connected.clear()
                record.websocket_connected(False)
            if self._stopping.is_set():
                break
            failures += 1
            self.counts["reconnects"] += 1
            record.websocket_reconnect()
            self._stopping.wait(wait if wait is not None else self._backoff.delay(failures, None))
        self._release_lease()

    def _refused(self, why: str) -> float:
        """Say why Webex refused the socket; how long to wait before the next attempt."""
        wait = self._config.refused_wait * (0.5 + self._jitter() / 2)
        log.error(f"{why}; trying again later", extra={"retry_in_seconds": round(wait)})
        return wait

    def stop(self) -> None:
        """Close the socket and end run() (from any thread)."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.close()

    @property
    def state(self) -> str:
        """Connected (the socket is open and authorized), standing by (another listener of the
        bot holds it; this one takes over if that one stops), or connecting."""
        if self._connected.is_set():
            return "connected"
        return "standing by" if self._standing_by else "connecting"

    def wait_until_connected(self, timeout: float) -> bool:
        """Block until the socket is open and authorized (tests and the demo)."""
        return self._connected.wait(timeout)

    # one socket ---------------------------------------------------------------------------

    def _listen(self, device: Device) -> None:
        """Open, authorize and read one socket until it closes."""
        headers = {"Authorization": f"Bearer {self._token.reveal()}",
                   "TrackingID": f"instant-connect-bot_{uuid.uuid4()}"}
        try:
            socket = connect(_with_query(device.websocket_url), additional_headers=headers,
                             open_timeout=self._config.open_timeout, ping_interval=None,
                             proxy=self._config.proxy, max_size=4 * 1024 * 1024,
                             logger=WIRE_LOG)
        except InvalidStatus as error:
            status = error.response.status_code
            if status == 404:
                raise DeviceGone("Webex", status=404) from None
            if status in (401, 403):
                raise Refused(f"Webex refused the bot's token when opening the websocket "
                              f"(HTTP {status}); check WEBEX_BOT_TOKEN") from None
            raise
        with socket:
            connection = Connection(socket, ping_interval=self._config.ping_interval,
                                    pong_timeout=self._config.pong_timeout)
            self._connection = connection
            try:
                if not connection.authorize(self._token, timeout=self._config.open_timeout):
                    log.info("Webex sent no buffer state after the authorization; listening "
                             "anyway", extra={"waited_seconds": self._config.open_timeout})
                self._opened()
                self._read(connection)
            except ConnectionClosed as error:
                self._closed(error)
            finally:
                self._connection = None
                self.counts["left unacknowledged"] += len(self._pending)
                self._pending.clear()  # not acknowledged: Webex may send them again

    def _read(self, connection: Connection) -> None:
        tick = min(self._config.ping_interval, self._config.lease_seconds / 3)
        while not self._stopping.is_set():
            wait = min(tick, self._retry_at - self._clock()) if self._pending else tick
            frame = connection.receive(timeout=wait)
            if frame is not None:
                self.counts["frames"] += 1
                record.websocket_frame()
                self._pending.append(frame)
            if self._pending and self._clock() >= self._retry_at:
                self._drain(connection)
            if len(self._pending) > self._config.max_pending:
                log.error("events cannot be stored and too many wait; closing the websocket "
                          "without acknowledging them", extra={"waiting": len(self._pending)})
                return
            self._heard()
            if not self._hold_lease():
                log.warning("another listener holds the bot's lease; closing this one")
                return

    def _drain(self, connection: Connection) -> None:
        """Store waiting frames in order, acknowledging each once handled; stop at a failure."""
        while self._pending:
            frame = self._pending[0]
            outcome = self._outcome(frame)
            self.counts[outcome.value if outcome is not None else "lookup failed"] += 1
            if outcome is None or not outcome.safe_to_acknowledge:
                self._failures += 1
                self._retry_at = self._clock() + self._backoff.delay(self._failures, None)
                return
            self._failures = 0
            if frame.id is not None:
                connection.ack(frame.id)
                self.counts["acknowledged"] += 1
            self._pending.pop(0)

    def _outcome(self, frame: Frame) -> Outcome | None:
        """What became of the frame's event; None when Webex could not be asked just now."""
        if frame.activity is None:
            return Outcome.IGNORED
        try:
            cluster = self._clusters.of(frame.activity.conversation_url)
            event = self._resolver.event(frame.activity.in_cluster(cluster))
        except UpstreamError as error:
            log.error("could not look up an event from the websocket; it waits",
                      extra={"reason": error.describe()})
            return None
        if event is None:
            return Outcome.IGNORED
        return self._acceptance.take(event, source="websocket")

    def _opened(self) -> None:
        """The socket is authorized: say what the gap hid and catch up on what can be listed."""
        self._connected.set()
        record.websocket_connected(True)
        now = self._clock()
        heard = self._store.get(HEARD.key())
        self._heard()
        log.info("listening to Webex over the websocket")
        if heard is None:
            return
        since = float(heard)
        limits = self._config.catch_up
        log.warning(
            "the websocket was closed: Webex does not replay what it sent meanwhile. Card "
            "submits and spaces the bot joined in that time are lost (unless webhooks also "
            "run); messages in 1:1 spaces and mentions are caught up",
            extra={"closed_from": _iso(since), "closed_until": _iso(now),
                   "seconds": round(now - since, 1),
                   "catch_up_window_seconds": limits.window_seconds})
        if limits.window_seconds > 0 and self._catching_up is None:
            self._catching_up = threading.Thread(
                target=self._catch_up, args=(since, now), name="listen-catch-up", daemon=True)
            self._catching_up.start()

    def _catch_up(self, since: float, now: float) -> None:
        try:
            result = catch_up(self._webex, self._acceptance, since=since, now=now,
                              limits=self._config.catch_up)
        except UpstreamError as error:
            log.error("could not catch up after the gap", extra={"reason": error.describe()})
        else:
            self.counts["caught up"] += result.stored
            log.info("caught up after the gap", extra={
                "found": result.found, "stored": result.stored, "not_stored": result.unstored,
                "more_spaces_than_listed": result.spaces_full})
        finally:
            self._catching_up = None

    def _closed(self, error: ConnectionClosed) -> None:
        """Turn Webex's close codes into what to do next."""
        close = error.rcvd
        if close is not None and close.code == DEVICE_NOT_FOUND:
            raise DeviceGone("Webex", status=404) from None
        if close is not None and (close.code == REPLACED or close.reason == "replaced"):
            raise Replaced() from None
        if close is not None and close.code in REFUSALS and not self._stopping.is_set():
            raise Refused(REFUSALS[close.code]) from None
        if not self._stopping.is_set():
            raise error

    # the store: device, lease, last heard -------------------------------------------------

    def _device(self) -> Device:
        remembered = self._store.get(DEVICE.key())
        if remembered is not None:
            return Device.from_json(remembered)
        device = self._registry.find_or_register()
        self._store.set(DEVICE.key(), device.to_json())
        return device

    def _hold_lease(self) -> bool:
        """Take or keep the one-listener-per-bot lease; False when another listener holds it."""
        seconds = self._config.lease_seconds
        try:
            holder = self._store.put_if_absent(LEASE.key(), self._owner, seconds)
            if holder is None:
                return True
            if holder != self._owner:
                return False
            self._store.set(LEASE.key(), self._owner, seconds)
            return True
        except StoreUnavailable:
            return self._connected.is_set()  # keep listening through a short outage

    def _release_lease(self) -> None:
        with contextlib.suppress(StoreUnavailable):  # else it expires by itself
            _release_lease(self._store, self._owner)

    def _heard(self) -> None:
        # When the store is down the next tick writes it; the catch-up then starts earlier.
        with contextlib.suppress(StoreUnavailable):
            self._store.set(HEARD.key(), repr(self._clock()))


def release_lease_of(store: Store, owner: str) -> None:
    """Free the websocket's lease if the listener of the dead worker process ``owner`` held
    it, so the next listener takes the socket at once rather than after the lease."""
    _release_lease(store, _lease_holder(owner))


def _lease_holder(owner: str) -> str:
    return f"listener-{owner}"


def _release_lease(store: Store, holder: str) -> None:
    if store.get(LEASE.key()) == holder:
        store.delete(LEASE.key())


def heard_lately(store: Store, config: ListenConfig, now: float) -> bool:
    """Whether some listener of the bot read its websocket lately: what a process without a
    listener of its own (a web process) reports as the websocket being connected."""
    heard = store.get(HEARD.key())
    return heard is not None and now - float(heard) <= config.lease_seconds


def _with_query(websocket_url: str) -> str:
    """The device's socket URL with what the JS SDK asks in its query."""
    parts = urlsplit(websocket_url)
    query = dict(parse_qsl(parts.query)) | SOCKET_QUERY
    return urlunsplit(parts._replace(query=urlencode(query)))


def _why(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed) and error.rcvd is not None:
        return f"closed with {error.rcvd.code} {error.rcvd.reason}".strip()
    return type(error).__name__ + (f": {error}" if str(error) else "")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
