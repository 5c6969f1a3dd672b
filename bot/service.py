"""One bot process, assembled for its role: clients, store, conversation, job runner, and the
event sources ``EVENTS`` names: the webhook intake, the websocket listener, or both.

Roles: a ``web`` process (gunicorn's, under ``serve``) only verifies, stores and answers
webhooks; a ``worker`` process (``python -m bot work``) runs the job threads and, with
``EVENTS=websocket`` or ``both``, the listener; ``all`` runs everything in one process (tests,
the demo). The store's wake-up joins them: an accept in a web process wakes a job thread at once.

Usage::

    service = BotService(settings)          # tests pass clients pointed at the sandbox
    service.start()                          # job threads, and the listener's thread
    reply = service.intake.receive(body, headers)   # when EVENTS has webhooks

``python -m bot serve`` first runs :func:`preflight`, which tries what settings alone cannot
tell (the store answers and persists, the device catalog is usable) and stops on a mistake;
then :func:`check_port` (``serve``) and :func:`check_token` (``serve``, ``work``, ``listen``), so a
mistake is one line naming the setting before gunicorn or any worker starts.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Literal
from urllib.parse import urlsplit

from bot.conversation.channels import EmailChannel, GuestChannel, SmsChannel
from bot.conversation.router import Conversation
from bot.errors import NotAuthorized, UpstreamError
from bot.jobs.acceptance import Acceptance
from bot.jobs.runner import JobRunner
from bot.jobs.storage import Store, StoreUnavailable, open_store, redact_url
from bot.listen.listener import Listener, heard_lately
from bot.logs import silenced
from bot.meetings.book import MeetingBook
from bot.settings import Settings, SettingsError
from bot.upstream.devices import DeviceRegistry
from bot.upstream.instant_connect import InstantConnectClient, is_sip_uri
from bot.upstream.mail import SmtpMailer
from bot.upstream.retry import RetryPolicy
from bot.upstream.sms import TwilioSms
from bot.upstream.webex import WebexClient
from bot.web.intake import Intake
from bot.web.server import ServerSettings
from bot.web.sms_status import TextStatusIntake

READINESS_TTL = 30.0

Role = Literal["all", "web", "worker"]


class BotService:
    """Owns everything one process of the bot runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        webex: WebexClient | None = None,
        meetings: InstantConnectClient | None = None,
        role: Role = "all",
        worker_owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_settings_store(settings)
        # One pooled connection per job thread, plus one for the readiness check.
        pool_size = settings.worker_threads + 1
        self.webex = webex or WebexClient(
            settings.bot_token, settings.webex_base_url,
            timeout=settings.webex_timeout, retry=settings.retry, pool_size=pool_size,
        )
        self.runner = None if role == "web" else self._runner(meetings, pool_size, worker_owner)
        self.intake = Intake(settings.intake_config(), self.store, on_accepted=self._wake) \
            if settings.webhooks and role != "worker" else None
        callback = settings.sms.status_callback if settings.sms else None
        self.text_status = TextStatusIntake(
            callback, settings.sms.auth_token, self.store, max_backlog=settings.max_backlog,
            on_accepted=self._wake) if settings.sms and callback and role != "worker" else None
        self.listener = self._listener(worker_owner) \
            if settings.websocket and role != "web" else None
        self._listening: threading.Thread | None = None
        self._token_checked_at = float("-inf")
        self._lock = threading.Lock()

    def _runner(self, meetings: InstantConnectClient | None, pool_size: int,
                owner: str | None) -> JobRunner:
        """The job threads and the conversation they run (a web process has neither)."""
        settings = self.settings
        meetings = meetings or InstantConnectClient(
            settings.bot_token, settings.instant_connect, pool_size=pool_size
        )
        conversation = Conversation(
            settings.conversation_config(), self.webex, meetings, self.store,
            meeting_book(settings, self.store), channels=guest_channels(settings, pool_size),
        )
        return JobRunner(
            self.store, conversation.process,
            threads=settings.worker_threads, lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.max_attempts, owner=owner,
        )

    def _wake(self) -> None:
        """An event was stored here: a job thread of this process takes it at once (the
        store's wake-up reaches the worker processes)."""
        if self.runner is not None:
            self.runner.notify()

    def _listener(self, owner: str | None) -> Listener:
        settings = self.settings
        acceptance = Acceptance(self.store, max_backlog=settings.max_backlog,
                                retention_seconds=settings.dedupe_retention.total_seconds(),
                                on_accepted=self._wake)
        registry = DeviceRegistry(settings.bot_token, settings.listen.u2c_url,
                                  retry=settings.retry, timeout=settings.webex_timeout)
        return Listener(settings.listen, settings.bot_token, registry, self.webex, self.store,
                        acceptance, owner=owner)

    def start(self) -> None:
        """Start the job threads, and the listener in a thread of its own."""
        if self.runner is not None:
            self.runner.start()
        if self.listener is not None and self._listening is None:
            self._listening = threading.Thread(target=self.listener.run, name="listener",
                                               daemon=True)
            self._listening.start()

    def stop(self) -> None:
        """Close the websocket, then let the job threads finish their current job and stop."""
        if self.listener is not None and self._listening is not None:
            self.listener.stop()
            self._listening.join()
            self._listening = None
        if self.runner is not None:
            self.runner.stop()

    def _heard_lately(self) -> bool:
        """Whether the listener in a worker process read the websocket lately."""
        try:
            return heard_lately(self.store, self.settings.listen, time.time())
        except StoreUnavailable:
            return False  # said as "storage unavailable" already

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until every accepted event is processed (tests, the demo); False on timeout."""
        if self.runner is None:
            raise RuntimeError("a web process runs no job threads to wait for")
        return self.runner.wait_until_idle(timeout)

    def readiness(self) -> list[str]:
        """What keeps the bot from working right now; empty when it is ready."""
        problems = []
        try:
            self.store.ping()
            if self.runner is None and self.store.live_workers() == 0:
                problems.append("no worker process has said it is alive in the last "
                                f"{self.settings.job_lease_seconds:g} s")
        except StoreUnavailable:  # what failed is in the log; this endpoint may be public
            problems.append("storage unavailable")
        if self.runner is not None:
            alive, wanted = self.runner.running()
            if alive < wanted:
                problems.append(f"{alive} of {wanted} job threads running")
        if self.listener is not None:
            connected = self.listener.state != "connecting"
        else:  # a web process: the listener, if any, runs in a worker process
            connected = not self.settings.websocket or self._heard_lately()
        if not connected:
            problems.append("the websocket to Webex is not connected")
        with self._lock:
            if time.monotonic() - self._token_checked_at > READINESS_TTL:
                try:
                    self.webex.check_token()
                    self._token_checked_at = time.monotonic()
                except UpstreamError as error:
                    problems.append(error.describe())
        return problems


def guest_channels(settings: Settings, pool_size: int) -> list[GuestChannel]:
    """Every way the bot knows to send guests their links, in the order a typed contact is
    tried (the one that takes any entry last); those without their settings stay, off."""
    return [
        EmailChannel(SmtpMailer(settings.mail) if settings.mail else None),
        SmsChannel(TwilioSms(settings.sms, pool_size=pool_size) if settings.sms else None),
    ]


def open_settings_store(settings: Settings) -> Store:
    """The store the settings name, keeping dedupe records for the configured retention."""
    return open_store(settings.storage_url,
                      retention_seconds=settings.dedupe_retention.total_seconds())


def preflight(settings: Settings) -> list[str]:
    """Check the deployment before serving: SettingsError on a mistake, else the warnings."""
    for device in settings.device_catalog:
        if not is_sip_uri(device.sip_uri):
            raise SettingsError(f"DEVICE_CATALOG: {device.name!r} has {device.sip_uri!r}, which "
                                "is not a SIP address like room@example.com.")
    names = [device.name.lower() for device in settings.device_catalog]
    if len(set(names)) < len(names):
        raise SettingsError("DEVICE_CATALOG: two devices have the same name.")
    where = redact_url(settings.storage_url)
    try:
        with silenced("bot.jobs.storage.health"):  # a store that is down is said in one line here
            store = open_settings_store(settings)
            try:
                store.ping()
                persistence = store.persistence()
            finally:
                store.close()
    except StoreUnavailable as error:
        raise SettingsError(f"STORAGE_URL: cannot use the store at {where}: {error}") from None
    if persistence.durable is False and not settings.allow_volatile_storage:
        raise SettingsError(
            f"STORAGE_URL: {persistence.detail}. Turn on appendonly (or RDB snapshots), or set "
            "ALLOW_VOLATILE_STORAGE=true to accept that.")
    if persistence.durable is not True or persistence.caveat:
        return [f"storage durability: {persistence.detail} {persistence.caveat}".strip()]
    return []


def check_token(settings: Settings) -> list[str]:
    """Ask Webex who the bot is (``GET /people/me``), once: SettingsError naming
    WEBEX_BOT_TOKEN when Webex refuses the token (no restart can mend that); when Webex cannot
    be asked now, a warning with the cause, since it may come back and the bot retries anyway."""
    webex = WebexClient(settings.bot_token, settings.webex_base_url,
                        timeout=settings.webex_timeout, retry=RetryPolicy(max_attempts=1))
    try:
        webex.check_token()
    except NotAuthorized as refused:
        raise SettingsError(
            f"WEBEX_BOT_TOKEN: Webex refused the bot's token (HTTP {refused.status}); set the "
            "bot's access token, as developer.webex.com shows it for the bot") from None
    except UpstreamError as error:
        host = error.host or urlsplit(settings.webex_base_url).hostname
        cause = f" ({error.cause})" if error.cause else ""
        return [f"could not check the bot's token with Webex at {host}{cause}; starting "
                f"anyway: {error.describe()}"]
    return []


def check_port(server: ServerSettings) -> None:
    """Bind HOST:PORT (and METRICS_HOST:METRICS_PORT) as gunicorn will (address reuse on), and
    let go: SettingsError naming the settings when that cannot work, rather than gunicorn's
    retries and tracebacks."""
    _check_bind("PORT", "HOST", server.host, server.port)
    if server.metrics_port:
        _check_bind("METRICS_PORT", "METRICS_HOST", server.metrics_host or server.host,
                    server.metrics_port)


def _check_bind(port_name: str, host_name: str, host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"{port} on {host_name} {host}"
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SettingsError(f"{port_name}: {where} is already in use by another process; "
                                f"stop it or choose another {port_name} (or {host_name})."
                                ) from None
        if error.errno == errno.EACCES:
            raise SettingsError(f"{port_name}: {where} needs privileges this process lacks "
                                f"(ports below 1024); choose a {port_name} of 1024 or more."
                                ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise SettingsError(f"{host_name}: {host} is not an address of this machine, so "
                                f"{port_name} {port} cannot be listened on there.") from None
        raise SettingsError(f"{port_name}: cannot listen on {where}: {error.strerror}."
                            ) from None


def meeting_book(settings: Settings, store: Store) -> MeetingBook:
    """The meetings the bot remembers, sealed with the settings' keys."""
    return MeetingBook(store, settings.require_meeting_keys(),
                       retention=settings.meeting_retention.total_seconds(),
                       audit_retention=settings.audit_retention.total_seconds(), clock=time.time)
