"""The Sandbox: a local Webex REST API and Instant Connect broker, driven from tests and demos.

It also stands for the bot's mail relay (SMTP with STARTTLS and AUTH, ``smtp_url``) and for
Twilio's Messages API (``twilio_api_url``), so guests' links by email and SMS stay local too;
and for the websocket a bot without a public URL listens on (the catalog at ``u2c_url``, the
devices, the socket: ``mercury_url``), which carries every event the webhooks do.

Example::

    with Sandbox(seed=7) as sb:
        alice = sb.add_person("alice@example.com", "Alice Example")
        room = sb.add_room("Clinic", members=[alice])
        sb.register_webhook("http://127.0.0.1:8080/webex/events", "s3cret", "messages", "created")
        sb.post_message(alice, room, "meet Follow-up")      # delivers a signed webhook
        sb.wait_for(lambda: sb.requests_matching("POST", "/v1/messages"))
        sb.wait_for(sb.mail)                                 # a guest's link by email
        sb.mercury_fault("drop")                             # the next frame cuts the socket

Spaces are hosted in the cluster of their creator's organisation: the sandbox's own (the
bot's) is in ``cluster`` ("us" unless told "eu"), others made with ``add_org("eu")`` where they
say; their ids, and their activities' ``target.url``, say so.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from .activities import Space
from .app import SandboxApp
from .broker import Broker
from .ciphers import unseal
from .content import person_content
from .delivery import Dispatcher, action_event, membership_event, message_event
from .devices import Devices, DevicesApi
from .faults import Fault, FaultTable
from .ids import IdFactory, seeded
from .journal import Delivery, Journal, Recorded
from .mail import ReceivedMail, SmtpFault, SmtpRelay, SmtpSession
from .mercury import Mercury, MercuryFault
from .rest_directory import DirectoryApi
from .rest_messages import MessagesApi
from .rest_webhooks import WebhooksApi
from .server import BackgroundServer
from .sms import SentSms, TwilioApi, TwilioFault
from .sms_status import CARRIER_PAUSE, Callback, StatusCallbacks
from .webhooks import WebhookStore
from .world import World

T = TypeVar("T")
Ref = dict[str, Any] | str


def _id(ref: Ref) -> str:
    """Accept a record (person, room, message, webhook) or its id."""
    return ref if isinstance(ref, str) else str(ref["id"])


class Sandbox:
    """A seeded, recorded, fault-injectable stand-in for Webex and the Instant Connect broker."""

    def __init__(self, seed: int = 0, *, host: str = "127.0.0.1", port: int = 0,
                 mercury_replay: bool = True, mercury_buffer_state: str = "asked",
                 cluster: str = "us") -> None:
        self.seed = seed
        self._journal = Journal()
        ids = IdFactory(seed)
        self._world = World(self._journal, ids, cluster)
        self.bot_token = f"sandbox-bot-token-{seeded(seed, 'token').getrandbits(96):024x}"
        self.jose_secret = hashlib.sha512(f"instant-connect-sandbox:{seed}".encode()).digest()
        bot_id = self._world.bot["id"]
        self._webhooks = WebhookStore(
            self._journal, ids, org_id=self._world.org_id, app_id=ids.new("APPLICATION")
        )
        self._webhooks.bind_owner(self.bot_token, bot_id)
        self._faults = FaultTable(self._journal)
        self._dispatcher = Dispatcher(self._journal, self._webhooks, self.bot_token, bot_id)
        broker = Broker(self.jose_secret, seeded(seed, "broker"), self._journal.lock)
        self._relay = SmtpRelay(
            self._journal, f"sandbox-smtp-{seeded(seed, 'smtp').getrandbits(96):024x}", host
        )
        self._stopping = threading.Event()
        twilio_account = f"AC{seeded(seed, 'twilio-account').getrandbits(128):032x}"
        twilio_token = f"{seeded(seed, 'twilio-token').getrandbits(128):032x}"
        self._status = StatusCallbacks(self._journal, account_sid=twilio_account,
                                       auth_token=twilio_token, stopping=self._stopping)
        self._twilio = TwilioApi(
            self._journal,
            account_sid=twilio_account,
            auth_token=twilio_token,
            messaging_service_sid=f"MG{seeded(seed, 'twilio-service').getrandbits(128):032x}",
            rng=seeded(seed, "twilio-sids"),
            callbacks=self._status,
        )
        self._devices = Devices(self._journal, ids, lambda: self.url, lambda: self.mercury_url)
        self._mercury = Mercury(self._journal, self._devices, self.bot_token, self._space,
                                host, self._stopping)
        self._mercury.replay = mercury_replay
        self._mercury.buffer_state = mercury_buffer_state
        self._dispatcher.subscribe(self._mercury.publish)
        rules = [
            *DirectoryApi(self._world).rules(),
            *DevicesApi(self._devices, lambda: self.url, cluster).rules(),
            *MessagesApi(self._world, self._dispatcher).rules(),
            *WebhooksApi(self._webhooks).rules(),
            *broker.rules(),
        ]
        app = SandboxApp(
            rules,
            journal=self._journal,
            faults=self._faults,
            token=self.bot_token,
            tracking_rng=seeded(seed, "tracking"),
            stopping=self._stopping,
            services=[self._twilio],
        )
        self._server = BackgroundServer(app, host, port)

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Start serving HTTP and SMTP and delivering webhooks."""
        self._stopping.clear()
        self._server.start()
        try:
            self._relay.start()
            self._mercury.start()
        except BaseException:
            self._relay.stop()
            self._server.stop()
            raise
        self._dispatcher.start()
        self._status.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut injected latencies and SMTP delays short, finish queued deliveries.

        The SMTP certificate's directory is removed; what was recorded stays readable.
        """
        self._stopping.set()
        self._status.stop()
        self._mercury.stop()
        self._relay.stop()
        self._server.stop()
        self._dispatcher.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server's base URL, "http://127.0.0.1:PORT"."""
        return self._server.url

    @property
    def webex_base_url(self) -> str:
        """The Webex REST base URL, with the trailing slash webexpythonsdk needs."""
        return self.url + "/v1/"

    @property
    def broker_url(self) -> str:
        """The Instant Connect broker base URL (the path is /api/v2/joseencrypt)."""
        return self.url

    # the mail relay (SMTP) ----------------------------------------------------------------

    @property
    def smtp_url(self) -> str:
        """``smtp://sandbox:PASSWORD@127.0.0.1:PORT``: STARTTLS, then AUTH PLAIN or LOGIN."""
        return self._relay.url

    @property
    def smtp_host(self) -> str:
        """The relay's address (the certificate names 127.0.0.1 and localhost)."""
        return self._relay.host

    @property
    def smtp_port(self) -> int:
        """The relay's port, chosen by the OS at start."""
        return self._relay.port

    @property
    def smtp_username(self) -> str:
        """The user AUTH accepts: "sandbox"."""
        return self._relay.username

    @property
    def smtp_password(self) -> str:
        """The password AUTH accepts, derived from the seed."""
        return self._relay.password

    @property
    def smtp_ca_file(self) -> str:
        """The PEM certificate (self-signed, made at start) a client must trust for STARTTLS."""
        return self._relay.ca_file

    def mail(self) -> list[ReceivedMail]:
        """Messages the relay accepted (250), oldest first, with their bytes as received."""
        return self._relay.received

    def smtp_sessions(self) -> list[SmtpSession]:
        """Every SMTP connection so far, oldest first: TLS, user, every reply line sent."""
        return self._relay.sessions

    def smtp_fault(self, kind: str, times: int | None = 1, seconds: float = 0.0) -> SmtpFault:
        """Make the next ``times`` messages (None: until cleared) fail at the relay.

        "refuse": every RCPT TO of the message answered ``550 5.1.1 mailbox unavailable``;
        "tempfail": its end of DATA answered ``451 4.3.0 try again later``; "slow": the end of
        DATA answered ``seconds`` late (stop() ends the wait); "drop": the message kept, then
        the connection dropped before its 250. A refused message is not kept.
        """
        fault = SmtpFault(kind, times, seconds)
        self._relay.add_fault(fault)
        return fault

    @property
    def smtp_8bitmime(self) -> bool:
        """Whether the relay offers 8BITMIME (the default); off, it is a strict 7-bit relay that
        refuses 8-bit data. Applies to connections opened after it is set."""
        return self._relay.eight_bit_mime

    @smtp_8bitmime.setter
    def smtp_8bitmime(self, offered: bool) -> None:
        self._relay.eight_bit_mime = offered

    @property
    def smtp_faults(self) -> list[SmtpFault]:
        """Copies of the SMTP faults still in force (a used-up fault disappears)."""
        return self._relay.faults

    # Twilio (SMS) -------------------------------------------------------------------------

    @property
    def twilio_api_url(self) -> str:
        """Twilio's API base: POST {twilio_api_url}/2010-04-01/Accounts/{sid}/Messages.json."""
        return self.url + "/twilio"

    @property
    def twilio_account_sid(self) -> str:
        """The account SID ("AC" and 32 hex digits), Basic auth's user name."""
        return self._twilio.account_sid

    @property
    def twilio_auth_token(self) -> str:
        """The auth token (32 hex digits), Basic auth's password."""
        return self._twilio.auth_token

    @property
    def twilio_from(self) -> str:
        """The one number messages may come from: Twilio's magic +15005550006."""
        return self._twilio.from_number

    @property
    def twilio_messaging_service_sid(self) -> str:
        """The account's messaging service ("MG" and 32 hex digits), instead of From."""
        return self._twilio.messaging_service_sid

    def sms(self) -> list[SentSms]:
        """Messages Twilio created, oldest first (answered 201, or a 5xx after creating)."""
        return self._twilio.sent

    def twilio_fault(self, kind: str, status: int = 500, times: int | None = 1) -> TwilioFault:
        """Make Twilio fail the next ``times`` creates (None: until cleared) with ``status``:
        "after_create" keeps the message all the same, "before_create" keeps nothing."""
        fault = TwilioFault(kind, status, times)
        self._twilio.add_fault(fault)
        return fault

    def twilio_status_plan(self, *statuses: str, to: str | None = None,
                           pause: float = CARRIER_PAUSE) -> None:
        """What Twilio reports to each message's status callback (to ``to``, or to every
        number), in order, ``pause`` seconds apart: ``"sent"``, ``"delivered"``,
        ``"undelivered:30003"``, ``"failed:30008"``, out of order or repeated as asked; none:
        no report until :meth:`twilio_report`. By default what Twilio usually reports: "sent"
        then "delivered" ("queued" first through a messaging service)."""
        self._status.plan(*statuses, to=to, pause=pause)

    def twilio_report(self, sid: str, status: str) -> Callback:
        """Report one status of message ``sid`` to its callback now, signed as Twilio signs;
        what the bot answered is in the result."""
        return self._status.report(sid, status)

    @property
    def twilio_callbacks(self) -> list[Callback]:
        """Every status callback made so far, oldest first, with the bot's answer."""
        return self._status.made

    def twilio_route(self, public_url: str, local_url: str) -> None:
        """The network between Twilio and the bot: a callback to ``public_url``... reaches
        ``local_url``... (a proxy in front of the bot), signed over the public URL."""
        self._status.route(public_url, local_url)

    @property
    def twilio_faults(self) -> list[TwilioFault]:
        """Copies of the Twilio faults still in force (a used-up fault disappears)."""
        return self._twilio.faults

    # the Webex world ----------------------------------------------------------------------

    @property
    def bot(self) -> dict[str, Any]:
        """The bot's person record (what GET /v1/people/me answers)."""
        return self._world.person(self._world.bot["id"])

    @property
    def org_id(self) -> str:
        """The sandbox's default organization id."""
        return self._world.org_id

    def add_org(self, cluster: str) -> str:
        """A new organisation whose people's spaces are hosted in ``cluster`` ("us" or "eu")."""
        return self._world.add_org(cluster)

    def add_person(
        self,
        email: str,
        display_name: str,
        org_id: str | None = None,
        timezone: str | None = None,
    ) -> dict[str, Any]:
        """Create a person who can talk to the bot."""
        return self._world.add_person(email, display_name, org_id, timezone)

    def add_room(
        self, title: str, members: list[Ref] | None = None, *, with_bot: bool = True
    ) -> dict[str, Any]:
        """Create a group space, with the bot as a member unless with_bot is False; it is
        hosted in the cluster of its first member's organisation."""
        return self._world.add_room(title, [_id(m) for m in members or []], with_bot=with_bot)

    def direct_room(self, person: Ref) -> dict[str, Any]:
        """The 1:1 space between a person and the bot, created on first use (hosted in the
        cluster of the person's organisation)."""
        return self._world.direct_room(_id(person))

    def post_message(
        self,
        person: Ref,
        room: Ref,
        text: str,
        mention_bot: bool = True,
        mention_form: str = "id",
        parent_id: str | None = None,
    ) -> dict[str, Any]:
        """A person writes in a space; matching webhooks are delivered before this returns."""
        room_type = self._world.room(_id(room))["type"]
        content = person_content(
            text,
            room_type=room_type,
            bot=self._world.bot,
            mention_bot=mention_bot,
            mention_form=mention_form,
        )
        message = self._world.add_message(_id(person), _id(room), content, parent_id)
        self._dispatcher.publish(message_event(message))
        return message

    def submit_card(self, person: Ref, card_message_id: str, inputs: dict[str, Any]) -> dict:
        """A person presses Submit on a card (even a deleted one); delivers the action."""
        action = self._world.add_action(_id(person), card_message_id, inputs)
        self._dispatcher.publish(action_event(action))
        return action

    def add_bot_to_room(self, room: Ref, by: Ref) -> dict[str, Any]:
        """Someone adds the bot to a space; delivers memberships/created."""
        membership = self._world.add_member(_id(room), self._world.bot["id"])
        self._dispatcher.publish(membership_event(membership, _id(by)))
        return membership

    def messages_in(self, room: Ref) -> list[dict[str, Any]]:
        """Live messages of a space, oldest first."""
        return self._world.messages_in(_id(room))

    def message(self, message_id: str) -> dict[str, Any] | None:
        """Any message ever posted (with "deleted": True once deleted), or None."""
        return self._world.message(message_id)

    # webhooks -----------------------------------------------------------------------------

    def register_webhook(
        self,
        target_url: str,
        secret: str | None,
        resource: str,
        event: str,
        name: str = "sandbox",
        filter: str | None = None,
        owner_token: str | None = None,
    ) -> dict[str, Any]:
        """Register a webhook as POST /v1/webhooks would (owned by the bot unless told)."""
        body = {"name": name, "targetUrl": target_url, "resource": resource, "event": event}
        body.update({k: v for k, v in (("filter", filter), ("secret", secret)) if v})
        return self._webhooks.create(owner_token or self.bot_token, body)

    def disable_webhook(self, webhook: Ref) -> None:
        """Mark a webhook inactive, as Webex does after failed deliveries."""
        self._webhooks.disable(_id(webhook))

    def deliver(
        self,
        webhook: Ref,
        data: dict[str, Any],
        *,
        body_override: bytes | None = None,
        signature_override: str | None = None,
    ) -> Delivery:
        """POST one envelope to a webhook now, optionally forged, for signature tests."""
        return self._dispatcher.send(
            self._webhooks.hook(_id(webhook)),
            data,
            actor_id=str(data.get("personId", self._world.bot["id"])),
            body_override=body_override,
            signature_override=signature_override,
        )

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook POST made so far, oldest first."""
        return self._journal.deliveries

    # the websocket ("Mercury"): events without a public URL -----------------------------

    @property
    def u2c_url(self) -> str:
        """The service catalog (U2C_URL): GET {u2c_url}/catalog names the device service."""
        return self.url + "/u2c/api/v1"

    @property
    def mercury_url(self) -> str:
        """The websocket server's base URL, "ws://127.0.0.1:PORT" (its own port)."""
        return self._mercury.url

    @property
    def mercury_buffer_state(self) -> str:
        """When a socket is told ``mercury.buffer_state`` after its authorization: "asked"
        (only when its query has ``bufferStates=true``), "always" or "never"."""
        return self._mercury.buffer_state

    @mercury_buffer_state.setter
    def mercury_buffer_state(self, mode: str) -> None:
        self._mercury.buffer_state = mode

    @property
    def mercury_replay(self) -> bool:
        """Whether frames left unacknowledged are resent on the device's next socket."""
        return self._mercury.replay

    @mercury_replay.setter
    def mercury_replay(self, value: bool) -> None:
        self._mercury.replay = value

    @property
    def devices(self) -> list[dict[str, Any]]:
        """Every device the bot registered, oldest first; deleted ones have "deleted": True."""
        return self._devices.records

    def delete_device(self, device: str) -> None:
        """Forget a device (by url or uuid), as Webex does: its socket is closed with 4404,
        its next handshake answered 404."""
        uuid = self._devices.uuid_of(device)
        self._devices.delete(uuid)
        self._mercury.close_device(uuid, 4404, "device not found")

    def close_mercury(self, code: int = 1011, reason: str = "") -> None:
        """Close every open websocket now with this code (4000 "replaced", 4401, 4404...)."""
        self._mercury.close_all(code, reason)

    def mercury_connected(self) -> int:
        """How many authorized websockets are open."""
        return self._mercury.connected()

    def mercury_settled(self) -> bool:
        """Whether every frame sent has been acknowledged (none waits to be resent or sent,
        none is still to come from a message the bot posted)."""
        return not self._dispatcher.pending and self._mercury.settled()

    def mercury_emit_raw(self, raw: str | dict[str, Any]) -> None:
        """Send any text (or JSON object) to every authorized websocket, as it is."""
        self._mercury.emit_raw(raw)

    def mercury_fault(self, kind: str, times: int | None = 1, *, code: int | None = None,
                      reason: str = "", seconds: float = 0.0) -> MercuryFault:
        """Make the websocket misbehave for the next ``times`` handshakes, frames or pings
        (None: until cleared); see MercuryFault for the kinds."""
        return self._mercury.add_fault(MercuryFault(kind, times, code, reason, seconds))

    @property
    def mercury_handshakes(self) -> list[dict[str, Any]]:
        """Every websocket handshake: path, status answered (101, 404, ...), masked headers."""
        with self._journal.lock:
            return list(self._mercury.handshakes)

    @property
    def frames_sent(self) -> list[dict[str, Any]]:
        """Every frame put on a websocket, oldest first (resends and duplicates included)."""
        with self._journal.lock:
            return list(self._mercury.frames_sent)

    @property
    def acks(self) -> list[str]:
        """The ids of acknowledged frames, in order."""
        with self._journal.lock:
            return list(self._mercury.acks)

    @property
    def pongs(self) -> list[str]:
        """The ids of the pings answered."""
        with self._journal.lock:
            return list(self._mercury.pongs)

    @property
    def mercury_missed(self) -> list[dict[str, Any]]:
        """Frames the bot never acknowledged and Webex will not send again: events while no
        socket was open (or it was mute), and, with replay off, frames on a closed socket."""
        with self._journal.lock:
            return list(self._mercury.missed)

    def _space(self, room_id: str) -> Space:
        return Space(self._world.room(room_id)["type"], self._world.cluster_of(room_id))

    # recording, waiting, faults, ciphers --------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far, oldest first."""
        return self._journal.requests

    def requests_matching(self, method: str, path: str) -> list[Recorded]:
        """Requests with this method and exact path (or prefix ending in "*")."""
        return self._journal.requests_matching(method, path)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Block until predicate() is truthy, re-checking on every change; TimeoutError if not."""
        return self._journal.wait_for(predicate, timeout)

    def clear_record(self) -> None:
        """Forget recorded requests, deliveries, mail, SMTP sessions, SMS and frames."""
        self._relay.clear()
        self._twilio.clear()
        self._status.clear()
        self._mercury.clear()
        self._journal.clear()

    def fail(
        self,
        method: str,
        path: str,
        status: int | None = 503,
        times: int | None = None,
        retry_after: str | None = None,
        latency: float = 0.0,
        drop: bool = False,
        body: str | bytes | dict | list | None = None,
    ) -> Fault:
        """Make matching requests fail (times=None: until cleared); see Fault."""
        return self.add_fault(Fault(method, path, status, times, retry_after, latency, drop, body))

    def add_fault(self, fault: Fault) -> Fault:
        """Put a prepared fault in force (earlier faults win when several match)."""
        self._faults.add(fault)
        return fault

    @property
    def faults(self) -> list[Fault]:
        """Copies of the faults still in force (a used-up fault disappears)."""
        return self._faults.active

    def revoke_token(self) -> None:
        """Refuse the bot's token from now on, as Webex does once it is revoked (until
        clear_faults): 401 on REST, the catalog and the devices; open websockets closed with
        4401 and new ones refused with it."""
        for path in ("/v1/*", "/u2c/*", "/wdm/*"):
            self._faults.add(Fault("*", path, status=401))
        self._mercury.refuse_token = True
        self._mercury.close_all(4401, "unauthorized")

    def clear_faults(self) -> None:
        """Remove every injected fault, SMTP, Twilio and websocket faults and a revoked token
        included."""
        self._faults.clear()
        self._mercury.refuse_token = False
        self._relay.clear_faults()
        self._twilio.clear_faults()
        self._mercury.clear_faults()

    def decrypt(self, cipher: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Open a broker cipher: (JWE protected header, verified JWT claims)."""
        header, _, claims = unseal(cipher, self.jose_secret)
        return header, claims

    def unseal(self, cipher: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Open a broker cipher fully: (JWE header, inner JWS header, claims)."""
        return unseal(cipher, self.jose_secret)
