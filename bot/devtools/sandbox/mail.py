"""A local SMTP relay (aiosmtpd) standing for the bot's mail provider, recorded and faultable.

The relay speaks real SMTP on a port the OS picks: STARTTLS with a certificate made at start
(for ``localhost`` and ``127.0.0.1``), then AUTH PLAIN or LOGIN with the sandbox's user and
password. Before STARTTLS it refuses everything but EHLO, NOOP, STARTTLS and QUIT (530), and
it takes no message before AUTH (530). A message answered 250 is in ``received`` before the
client reads the 250; a message refused (550, 451) is not kept.

8-bit data follows RFC 6152. By default the relay offers 8BITMIME (and SMTPUTF8), and refuses
a message with 8-bit bytes whose MAIL FROM did not declare ``BODY=8BITMIME`` (or SMTPUTF8):
``554 5.6.0``, as a strict relay does. With ``eight_bit_mime`` off it offers neither, as a
7-bit relay: MAIL FROM with a BODY parameter gets ``555``, and 8-bit data gets aiosmtpd's
``500 Error: strict ASCII mode`` (the mode applies to connections opened after it is set).

Faults, consumed one message at a time: ``refuse`` answers every RCPT TO of the next message
``550 5.1.1 mailbox unavailable``; ``tempfail`` answers the next message's end of DATA
``451 4.3.0 try again later``; ``slow`` holds the next end-of-DATA answer back for some seconds
(a client that disconnects meanwhile leaves no message; stopping the relay ends the wait and
the answer goes out as it would have); ``drop`` keeps the next message, then drops the
connection before answering, as a relay that crashed or a network that failed right then.

aiosmtpd logs every line of every message at DEBUG; the relay keeps its logger at ERROR, as
a real relay's logs are not the bot's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hmac
import ipaddress
import logging
import os
import shutil
import ssl
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .faults import use_up
from .journal import Journal

USERNAME = "sandbox"
HOSTNAME = "localhost"
KINDS = ("refuse", "tempfail", "slow", "drop")
REFUSED = "550 5.1.1 mailbox unavailable"
TEMPFAIL = "451 4.3.0 try again later"
ACCEPTED = "250 2.0.0 OK: queued"
UNDECLARED_8BIT = "554 5.6.0 8-bit data without BODY=8BITMIME (RFC 6152)"
STOP_GRACE_SECONDS = 2.0
CLOSE_GRACE_SECONDS = 0.2  # for a TLS goodbye; a client that is not reading never sends one
# aiosmtpd logs every message line at DEBUG and a deprecation warning at every login.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class ReceivedMail:
    """One message the relay accepted (250): the envelope, MAIL FROM's parameters (such as
    ``BODY=8BITMIME``) and the message bytes as received."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmtpSession:
    """One connection to the relay so far: TLS, who logged in, and every reply line it got."""

    peer: str
    tls: bool
    user: str | None
    replies: tuple[str, ...]
    closed: bool


@dataclass
class SmtpFault:
    """How the relay misbehaves for the next ``times`` messages (None: until cleared).

    ``kind`` is "refuse" (550 to every RCPT TO), "tempfail" (451 at the end of DATA), "slow"
    (the end-of-DATA answer ``seconds`` late) or "drop" (the message kept, the connection
    dropped before the answer).
    """

    kind: str
    times: int | None = 1
    seconds: float = 0.0

    def __post_init__(self) -> None:
        """Refuse faults that would do nothing or make no sense."""
        if self.kind not in KINDS:
            raise ValueError(f"SMTP fault kind must be one of {', '.join(KINDS)}: {self.kind!r}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")
        if self.kind == "slow" and self.seconds <= 0:
            raise ValueError('a "slow" fault needs seconds > 0')
        if self.kind != "slow" and self.seconds:
            raise ValueError(f'seconds is for "slow" faults only, not {self.kind!r}')


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for localhost and 127.0.0.1 and its key; their paths.

    The certificate is its own authority (CA, keyCertSign, key identifiers), so a client that
    trusts it as a CA file verifies it, strict X.509 checking included.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Instant Connect sandbox"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    names = [x509.DNSName(HOSTNAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(identifier, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-ca.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    return cert_file, key_file


class _Live:
    """What one connection has done so far (mutable; published as SmtpSession snapshots)."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.tls = False
        self.user: str | None = None
        self.replies: list[str] = []
        self.closed = False

    def snapshot(self) -> SmtpSession:
        """A frozen copy (callers hold the journal lock)."""
        return SmtpSession(self.peer, self.tls, self.user, tuple(self.replies), self.closed)


class _Hooks:
    """The aiosmtpd handler: recipients and message ends, decided by the relay's faults."""

    def __init__(self, relay: SmtpRelay) -> None:
        self._relay = relay

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept the recipient, unless a "refuse" fault covers this message."""
        if self._relay.refuses(envelope):
            return REFUSED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message and answer 250, unless a fault delays or refuses it."""
        return await self._relay.end_of_data(server, envelope)


class _RelaySmtp(SMTP):
    """aiosmtpd's SMTP protocol, telling the relay about the connection and each reply."""

    def __init__(self, relay: SmtpRelay, **kwargs: Any) -> None:
        super().__init__(_Hooks(relay), **kwargs)
        self.relay = relay
        self.live: _Live | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Open a session record (the first call) or mark it TLS (the call after STARTTLS)."""
        super().connection_made(transport)
        if self.live is None:
            self.live = self.relay.opened(self, transport.get_extra_info("peername"))
        elif self.session is not None and self.session.ssl is not None:
            self.relay.note(self.live, tls=True)

    def connection_lost(self, error: Exception | None) -> None:
        """Close the session record."""
        super().connection_lost(error)
        self.relay.closed(self)

    async def push(self, status: AnyStr) -> None:
        """Record the reply line, then send it (unless the connection was dropped)."""
        if self.transport is None or self.transport.is_closing():
            return
        if self.live is not None:
            text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
            self.relay.note(self.live, reply=str(text))
        await super().push(status)

    def close(self, *, abort: bool = False) -> None:
        """Close the connection (at stop): flushing what was written, or at once."""
        if abort and isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()
        elif self.transport is not None:
            self.transport.close()


class SmtpRelay:
    """The SMTP server: its own event loop thread, the messages it kept, its faults."""

    def __init__(self, journal: Journal, password: str, host: str = "127.0.0.1") -> None:
        self._journal = journal
        self._lock = journal.lock
        self.username = USERNAME
        self.password = password
        self.host = host
        self._received: list[ReceivedMail] = []
        self._sessions: list[_Live] = []
        self._faults: list[SmtpFault] = []
        self._refused: weakref.WeakSet[Envelope] = weakref.WeakSet()
        self._port: int | None = None
        self._directory: Path | None = None
        self._cert_file: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._halt: asyncio.Event | None = None
        self._live: set[_RelaySmtp] = set()
        self._all_closed: asyncio.Event | None = None
        self._delayed: set[asyncio.Future[None]] = set()
        self.eight_bit_mime = True

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Make a certificate, bind a free port and serve from a background event loop."""
        if self._loop is not None:
            raise RuntimeError("the SMTP relay is already running")
        self._directory = Path(tempfile.mkdtemp(prefix="sandbox-smtp-"))
        try:
            self._cert_file, key_file = make_certificate(self._directory)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self._cert_file, key_file)
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._thread = threading.Thread(target=loop.run_forever, name="sandbox-smtp")
            self._thread.daemon = True
            self._thread.start()
            opened = asyncio.run_coroutine_threadsafe(self._open(context), loop)
            self._port = opened.result(timeout=10)
        except BaseException:
            self.stop()
            raise

    async def _open(self, context: ssl.SSLContext) -> int:
        """Listen (on the relay's loop); the port the OS chose."""
        loop = asyncio.get_running_loop()
        self._halt = asyncio.Event()
        self._all_closed = asyncio.Event()

        def protocol() -> _RelaySmtp:
            return _RelaySmtp(
                self,
                hostname=HOSTNAME,
                ident="Instant Connect sandbox ESMTP",
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                auth_require_tls=True,
                authenticator=self._authenticate,
                decode_data=not self.eight_bit_mime,  # aiosmtpd's 7-bit mode: no 8BITMIME
                enable_SMTPUTF8=self.eight_bit_mime,  # SMTPUTF8 requires 8BITMIME (RFC 6531)
                timeout=60,
                loop=loop,
            )

        self._server = await loop.create_server(protocol, self.host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        """End delays (their answers still go out), close connections, stop, remove the cert."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            closing = asyncio.run_coroutine_threadsafe(self._close(), loop)
            try:
                closing.result(timeout=STOP_GRACE_SECONDS * 3)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
        if loop is not None:
            loop.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._loop = self._thread = self._server = self._halt = self._all_closed = None
        self._port = self._directory = self._cert_file = None

    async def _close(self) -> None:
        """Stop listening, let delayed answers out, close every connection, end every task."""
        if self._server is not None:
            self._server.close()
        if self._halt is not None:
            self._halt.set()
        if self._delayed:
            await asyncio.wait(set(self._delayed), timeout=STOP_GRACE_SECONDS)
        for connection in list(self._live):
            connection.close()
        if self._live and self._all_closed is not None:
            try:
                await asyncio.wait_for(self._all_closed.wait(), CLOSE_GRACE_SECONDS)
            except TimeoutError:
                for connection in list(self._live):
                    connection.close(abort=True)
        tasks = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE_SECONDS)
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def port(self) -> int:
        """The port the relay listens on."""
        if self._port is None:
            raise RuntimeError("the SMTP relay is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``smtp://sandbox:PASSWORD@HOST:PORT``."""
        return f"smtp://{self.username}:{self.password}@{self.host}:{self.port}"

    @property
    def ca_file(self) -> str:
        """The PEM certificate a client must trust (exists while the relay runs)."""
        if self._cert_file is None:
            raise RuntimeError("the SMTP relay is not running; call start() first")
        return str(self._cert_file)

    # what happened --------------------------------------------------------------------------

    def opened(self, connection: _RelaySmtp, peername: Any) -> _Live:
        """A client connected."""
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        live = _Live(peer)
        self._live.add(connection)
        if self._all_closed is not None:
            self._all_closed.clear()
        with self._lock:
            self._sessions.append(live)
            self._journal.changed()
        return live

    def note(
        self,
        live: _Live,
        *,
        reply: str | None = None,
        tls: bool = False,
        user: str | None = None,
        closed: bool = False,
    ) -> None:
        """Add to a session's record and wake waiters."""
        with self._lock:
            if reply is not None:
                live.replies.append(reply)
            live.tls = live.tls or tls
            live.user = user or live.user
            live.closed = live.closed or closed
            self._journal.changed()

    def closed(self, connection: _RelaySmtp) -> None:
        """A connection ended."""
        self._live.discard(connection)
        if not self._live and self._all_closed is not None:
            self._all_closed.set()
        if connection.live is not None:
            self.note(connection.live, closed=True)

    @property
    def received(self) -> list[ReceivedMail]:
        """Messages accepted so far, oldest first."""
        with self._lock:
            return list(self._received)

    @property
    def sessions(self) -> list[SmtpSession]:
        """Every connection so far, oldest first, as it stands now."""
        with self._lock:
            return [live.snapshot() for live in self._sessions]

    def clear(self) -> None:
        """Forget accepted messages and sessions."""
        with self._lock:
            self._received.clear()
            self._sessions = [live for live in self._sessions if not live.closed]
            for live in self._sessions:
                live.replies.clear()
            self._journal.changed()

    # faults ---------------------------------------------------------------------------------

    def add_fault(self, fault: SmtpFault) -> None:
        """Put a fault in force (after those already there)."""
        with self._lock:
            self._faults.append(fault)
            self._journal.changed()

    @property
    def faults(self) -> list[SmtpFault]:
        """Copies of the faults still in force."""
        with self._lock:
            return [dataclasses.replace(fault) for fault in self._faults]

    def clear_faults(self) -> None:
        """Remove every SMTP fault."""
        with self._lock:
            self._faults.clear()
            self._journal.changed()

    def _take(self, kind: str) -> SmtpFault | None:
        """The first fault of this kind, one of its times used up."""
        with self._lock:
            fault = use_up(self._faults, lambda fault: fault.kind == kind)
            if fault is not None:
                self._journal.changed()
            return fault

    # the SMTP conversation (called on the relay's loop) -------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept PLAIN or LOGIN with the sandbox's user and password (535 otherwise)."""
        good = (
            mechanism in ("PLAIN", "LOGIN")
            and isinstance(data, LoginPassword)
            and hmac.compare_digest(data.login, self.username.encode())
            and hmac.compare_digest(data.password, self.password.encode())
        )
        if good and isinstance(server, _RelaySmtp) and server.live is not None:
            self.note(server.live, user=self.username)
        return AuthResult(success=good, handled=False)

    def refuses(self, envelope: Envelope) -> bool:
        """Whether this recipient is refused: every one of a message a "refuse" fault took."""
        if envelope in self._refused or self._take("refuse") is not None:
            self._refused.add(envelope)
            return True
        return False

    async def end_of_data(self, server: SMTP, envelope: Envelope) -> str:
        """The answer to a complete message: kept and 250, or late, or refused and not kept, or
        kept and no answer at all (the connection dropped)."""
        slow, tempfail, drop = self._take("slow"), self._take("tempfail"), self._take("drop")
        if slow is not None:
            await self._delay(slow.seconds)
        if tempfail is not None:
            return TEMPFAIL
        content = envelope.original_content or b""
        declared = "BODY=8BITMIME" in envelope.mail_options or envelope.smtp_utf8
        if not content.isascii() and not declared:
            return UNDECLARED_8BIT
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            mail_options=tuple(envelope.mail_options),
            data=content,
        )
        with self._lock:
            self._received.append(mail)
            self._journal.changed()
        if drop is not None and isinstance(server.transport, asyncio.WriteTransport):
            server.transport.abort()  # the message is kept; its 250 never leaves
        return ACCEPTED

    async def _delay(self, seconds: float) -> None:
        """Wait, unless the relay stops first; a disconnecting client cancels the wait."""
        assert self._halt is not None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._delayed.add(done)
        try:
            await asyncio.wait_for(self._halt.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self._delayed.discard(done)
            # Resolved on the next turn of the loop, after aiosmtpd has written the answer.
            asyncio.get_running_loop().call_soon(_resolve, done)


def _resolve(future: asyncio.Future[None]) -> None:
    """Mark a delay as over (its answer already written)."""
    if not future.done():
        future.set_result(None)
