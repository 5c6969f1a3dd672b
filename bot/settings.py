"""Every setting the bot has, read from the environment in exactly one place.

Usage::

    settings = Settings.from_env()                # raises SettingsError naming the variable
    client = InstantConnectClient(settings.bot_token, settings.instant_connect)
    conversation = Conversation(settings.conversation_config(), webex, client, store,
                                meeting_book(settings, store))

Nothing else in the bot reads ``os.environ`` (the dev tooling aside); tests build
``Settings(...)`` directly. Each part gets the small config it reads (the broker's, the
intake's, the conversation's, the web server's), defined beside the code it configures.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.conversation.access import AccessPolicy
from bot.conversation.config import ConversationConfig
from bot.conversation.reminders import LEAD_RANGE, lead_time
from bot.conversation.timewindow import known_zone, parse_duration
from bot.jobs.storage import DEFAULT_RETENTION_SECONDS, check_store_url
from bot.limits import MAX_VALIDITY, MIN_VALIDITY, UPSTREAM_TIMEOUT, VALIDITY_RANGE, WORKER_THREADS
from bot.listen.catch_up import CatchUpLimits
from bot.listen.listener import ListenConfig
from bot.meetings.book import DEFAULT_AUDIT_RETENTION, DEFAULT_RETENTION
from bot.meetings.sealing import Keyring
from bot.metrics import scrape
from bot.secret import Secret
from bot.upstream.instant_connect.config import DEFAULT_AUDIENCE, InstantConnectConfig
from bot.upstream.mail import MailConfig, check_smtp_url
from bot.upstream.retry import RetryPolicy
from bot.upstream.sms import TwilioConfig
from bot.web.intake import IntakeConfig
from bot.web.server import ServerSettings
from bot.web.sms_status import SMS_STATUS_PATH
from cards.inputs import GUEST_LANGUAGES, CatalogDevice

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EVENT_SOURCES = ("webhooks", "websocket", "both")
MIN_RETENTION = "1h"  # Webex redelivers a failed webhook for a while
#: A webhook secret is all that proves a delivery came from Webex: one shorter than this could be
#: guessed, and could not be masked in the logs without garbling them.
MIN_WEBHOOK_SECRET_LENGTH = 16
# A webhook from Webex is about 1 KB (its name, target URL and filter are the bot's; its data
# ids); under 4 KiB a long target URL could make every webhook a 413.
MIN_BODY_BYTES = 4096
MIN_BODY_WHY = ": a webhook from Webex is about 1 KB, and every one above it is refused"


MEETING_ACTORS = ("maker", "space")


class SettingsError(ValueError):
    """A variable is missing or invalid; the message names it and never shows its value."""


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one bot deployment."""

    bot_token: Secret
    webex_base_url: str = "https://webexapis.com/v1/"
    webex_timeout: float = UPSTREAM_TIMEOUT
    instant_connect: InstantConnectConfig = field(default_factory=InstantConnectConfig)
    webhook_secret: Secret | None = None
    previous_webhook_secret: Secret | None = None  # still accepted while webhooks are rotated
    meeting_keys: Keyring | None = None  # seal what meetings keep; serve, work, listen need them
    meeting_actions: str = "space"  # who may act on a meeting: its maker, or its space's members
    meeting_retention: timedelta = timedelta(seconds=DEFAULT_RETENTION)
    audit_retention: timedelta = timedelta(seconds=DEFAULT_AUDIT_RETENTION)
    allow_unsigned_webhooks: bool = False
    webhook_path: str = "/webhooks"
    public_url: str | None = None
    max_body_bytes: int = 256 * 1024
    events: str = "webhooks"  # where events come from: webhooks, websocket or both
    listen: ListenConfig = field(default_factory=ListenConfig)  # the websocket's
    # Not in the repr: a Redis URL may carry a password.
    storage_url: str = field(default="sqlite:///data/instant-connect-bot.sqlite3", repr=False)
    allow_volatile_storage: bool = False
    dedupe_retention: timedelta = timedelta(seconds=DEFAULT_RETENTION_SECONDS)
    worker_threads: int = WORKER_THREADS
    job_lease_seconds: float = 60.0
    max_attempts: int = 5
    max_backlog: int = 10_000
    access: AccessPolicy = field(default_factory=AccessPolicy)
    device_catalog: tuple[CatalogDevice, ...] = ()
    # The conversation's own defaults (ConversationConfig), so each is written once.
    default_timezone: str = ConversationConfig.default_timezone
    default_valid_for: str = ConversationConfig.default_valid_for
    meetings_per_person: int = ConversationConfig.meetings_per_person
    meetings_window: timedelta = ConversationConfig.meetings_window
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    mail: MailConfig | None = None  # guests' links by email: SMTP_URL, MAIL_FROM
    sms: TwilioConfig | None = None  # guests' links by text message: TWILIO_*
    phone_region: str | None = None  # where a number typed without + is read
    org_name: str = ConversationConfig.org_name  # who invites guests, beside the person
    guest_language: str = ConversationConfig.guest_language  # what guests read by default
    remind_before: str = ConversationConfig.remind_before  # guests' reminder lead by default
    server: ServerSettings = field(default_factory=ServerSettings)
    log_level: str | None = None  # None: each command's own default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and check the settings (from ``os.environ`` unless given); SettingsError names
        a bad or missing variable."""
        env = os.environ if env is None else env
        read = _Reader(env)
        broker = InstantConnectConfig(
            broker_url=read.url("IC_BROKER_URL", InstantConnectConfig.broker_url),
            audience=read.text("IC_AUDIENCE", DEFAULT_AUDIENCE),
            host_url_base=read.url("IC_HOST_URL_BASE", InstantConnectConfig.host_url_base),
            guest_url_base=read.url("IC_GUEST_URL_BASE", InstantConnectConfig.guest_url_base),
            connect_timeout=read.number("IC_CONNECT_TIMEOUT", InstantConnectConfig.connect_timeout),
            read_timeout=read.number("IC_READ_TIMEOUT", InstantConnectConfig.read_timeout),
        )
        webex_url = read.url("WEBEX_API_URL", cls.webex_base_url)
        if not webex_url.rstrip("/").endswith("/v1"):
            raise SettingsError("WEBEX_API_URL must end with /v1, such as "
                                "https://webexapis.com/v1: every call would fail without it.")
        secret = read.webhook_secret("WEBHOOK_SECRET")
        previous = read.webhook_secret("WEBHOOK_SECRET_PREVIOUS")
        if previous is not None and secret is None:
            raise SettingsError("WEBHOOK_SECRET_PREVIOUS is set without WEBHOOK_SECRET: during a "
                                "rotation both are set, the new secret in WEBHOOK_SECRET.")
        return cls(
            bot_token=Secret(read.required("WEBEX_BOT_TOKEN")),
            webex_base_url=webex_url if webex_url.endswith("/") else webex_url + "/",
            webex_timeout=read.number("WEBEX_TIMEOUT", cls.webex_timeout),
            instant_connect=broker,
            webhook_secret=secret,
            previous_webhook_secret=previous,
            meeting_keys=read.keyring("MEETING_KEYS"),
            meeting_actions=read.choice("MEETING_ACTIONS", cls.meeting_actions, MEETING_ACTORS),
            meeting_retention=timedelta(seconds=read.duration_seconds(
                "MEETING_RETENTION", cls.meeting_retention, minimum="1d")),
            audit_retention=timedelta(seconds=read.duration_seconds(
                "AUDIT_RETENTION", cls.audit_retention, minimum="1d")),
            allow_unsigned_webhooks=read.flag("ALLOW_UNSIGNED_WEBHOOKS", False),
            webhook_path=read.path("WEBHOOK_PATH", "/webhooks"),
            public_url=read.url("PUBLIC_URL", "") or None,
            max_body_bytes=read.integer("MAX_BODY_BYTES", cls.max_body_bytes,
                                        minimum=MIN_BODY_BYTES, why=MIN_BODY_WHY),
            events=read.choice("EVENTS", cls.events, EVENT_SOURCES),
            listen=_listen(read),
            max_backlog=read.integer("MAX_BACKLOG", cls.max_backlog),
            storage_url=read.storage_url("STORAGE_URL", cls.storage_url),
            allow_volatile_storage=read.flag("ALLOW_VOLATILE_STORAGE", False),
            dedupe_retention=timedelta(seconds=read.duration_seconds(
                "DEDUPE_RETENTION", cls.dedupe_retention, minimum=MIN_RETENTION)),
            worker_threads=read.integer("WORKER_THREADS", cls.worker_threads),
            job_lease_seconds=read.number("JOB_LEASE_SECONDS", cls.job_lease_seconds),
            max_attempts=read.integer("MAX_ATTEMPTS", cls.max_attempts),
            access=AccessPolicy(
                allowed_domains=read.lowercase_set("ALLOWED_DOMAINS"),
                allowed_people=read.lowercase_set("ALLOWED_PEOPLE"),
                allowed_org_ids=frozenset(read.items("ALLOWED_ORG_IDS")),
                allow_everyone=read.flag("ALLOW_EVERYONE", False),
            ),
            device_catalog=read.catalog("DEVICE_CATALOG"),
            default_timezone=read.timezone("DEFAULT_TIMEZONE", cls.default_timezone),
            default_valid_for=read.validity("DEFAULT_VALID_FOR", cls.default_valid_for),
            meetings_per_person=read.integer("MEETINGS_PER_PERSON", cls.meetings_per_person),
            meetings_window=timedelta(
                seconds=read.duration_seconds("MEETINGS_WINDOW", cls.meetings_window)
            ),
            mail=_mail(read),
            sms=_sms(read, read.url("PUBLIC_URL", "") or None),
            phone_region=read.region("DEFAULT_PHONE_REGION"),
            org_name=read.text("ORG_NAME", cls.org_name),
            guest_language=read.choice("GUEST_LANGUAGE", cls.guest_language,
                                       tuple(GUEST_LANGUAGES)),
            remind_before=read.lead_time("REMIND_BEFORE", cls.remind_before),
            server=server_settings(env),
            log_level=read.choice("LOG_LEVEL", "", LOG_LEVELS, upper=True) or None,
        )

    def conversation_config(self) -> ConversationConfig:
        """What the conversation reads: who may use the bot, devices, defaults, the rate limit."""
        return ConversationConfig(
            access=self.access,
            device_catalog=self.device_catalog,
            default_timezone=self.default_timezone,
            default_valid_for=self.default_valid_for,
            meetings_per_person=self.meetings_per_person,
            meetings_window=self.meetings_window,
            phone_region=self.phone_region,
            org_name=self.org_name,
            meeting_actions=self.meeting_actions,
            guest_language=self.guest_language,
            remind_before=self.remind_before,
        )

    @property
    def webhooks(self) -> bool:
        """Whether events come as webhooks (EVENTS=webhooks or both)."""
        return self.events != "websocket"

    @property
    def websocket(self) -> bool:
        """Whether events come over the websocket (EVENTS=websocket or both)."""
        return self.events != "webhooks"

    def intake_config(self) -> IntakeConfig:
        """What the webhook intake reads; SettingsError when webhooks would be unsigned."""
        self.require_webhook_secret()
        return IntakeConfig(
            webhook_secret=self.webhook_secret,
            previous_webhook_secret=self.previous_webhook_secret,
            max_body_bytes=self.max_body_bytes,
            max_backlog=self.max_backlog,
            retention_seconds=self.dedupe_retention.total_seconds(),
        )

    def secret_values(self) -> list[str]:
        """Every secret in these settings, so the logs can mask them."""
        secrets = [self.bot_token, self.webhook_secret, self.previous_webhook_secret,
                   self.sms.auth_token if self.sms else None]
        values = [secret.reveal() for secret in secrets if secret is not None]
        values += self.meeting_keys.secret_values() if self.meeting_keys else []
        urls = [self.storage_url, self.mail.url if self.mail else "", self.listen.proxy or ""]
        return values + [password for password in map(_password, urls) if password]

    def require_webhook_secret(self) -> None:
        """Refuse to serve webhooks unsigned unless a developer said so explicitly."""
        if self.webhooks and self.webhook_secret is None and not self.allow_unsigned_webhooks:
            raise SettingsError(
                "WEBHOOK_SECRET is not set. Set it (the same secret the webhooks were created "
                "with), or set ALLOW_UNSIGNED_WEBHOOKS=true for local development only."
            )

    def require_meeting_keys(self) -> Keyring:
        """The keys that seal the meetings the bot remembers: serve, work and listen refuse to
        start without them, since a remembered meeting is what keeps a retried event from
        making a second set of links, and its contacts and links are not kept in clear."""
        if self.meeting_keys is None:
            raise SettingsError(
                "MEETING_KEYS is not set: it encrypts the guests' contacts and the links the bot "
                "keeps of each meeting (remembered so that a retried event never makes a second "
                "set of links). Make one with 'python -m bot new-key'.")
        return self.meeting_keys


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def _mail(read: _Reader) -> MailConfig | None:
    """SMTP_URL, MAIL_FROM and SMTP_CA_FILE, or None when email to guests is not set up."""
    url = read.text("SMTP_URL", "")
    if not url:
        return None
    try:
        check_smtp_url(url)
    except ValueError as error:
        raise SettingsError(f"SMTP_URL {error}, like smtp://user:password@host:587.") from None
    return MailConfig(url, mail_from=read.email("MAIL_FROM", needed_by="SMTP_URL"),
                      ca_file=read.file("SMTP_CA_FILE"))


def _listen(read: _Reader) -> ListenConfig:
    """U2C_URL, HTTPS_PROXY (for the websocket; REST calls read it themselves) and
    CATCH_UP_WINDOW."""
    window = read.duration_seconds("CATCH_UP_WINDOW", timedelta(
        seconds=CatchUpLimits.window_seconds), allow_zero=True)
    return ListenConfig(
        u2c_url=read.url("U2C_URL", ListenConfig.u2c_url),
        proxy=read.url("HTTPS_PROXY", read.text("https_proxy", "")) or None,
        catch_up=CatchUpLimits(window_seconds=window),
    )


def _sms(read: _Reader, public_url: str | None) -> TwilioConfig | None:
    """TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM and TWILIO_API_URL, or None; with
    PUBLIC_URL, each message asks Twilio to report its fate to the bot's status callback."""
    sid = read.text("TWILIO_ACCOUNT_SID", "")
    if not sid:
        return None
    return TwilioConfig(
        account_sid=sid,
        auth_token=Secret(read.needed("TWILIO_AUTH_TOKEN", by="TWILIO_ACCOUNT_SID")),
        from_number=read.needed("TWILIO_FROM", by="TWILIO_ACCOUNT_SID"),
        api_url=read.url("TWILIO_API_URL", TwilioConfig.api_url),
        status_callback=public_url.rstrip("/") + SMS_STATUS_PATH if public_url else None,
    )


def server_settings(env: Mapping[str, str] | None = None) -> ServerSettings:
    """HOST, PORT, WEB_CONCURRENCY, WEB_THREADS, WORKER_PROCESSES, METRICS_PORT, METRICS_HOST
    and METRICS_DIR (SettingsError naming a bad one)."""
    read = _Reader(os.environ if env is None else env)
    port = read.integer("PORT", ServerSettings.port, maximum=65535)
    metrics_port = read.integer("METRICS_PORT", ServerSettings.metrics_port, maximum=65535,
                                minimum=0)
    if metrics_port == port:
        raise SettingsError("METRICS_PORT must differ from PORT: the metrics are not for the "
                            "public webhook port (0 turns them off).")
    return ServerSettings(
        host=read.host("HOST", ServerSettings.host),
        port=port,
        processes=read.integer("WEB_CONCURRENCY", ServerSettings.processes),
        threads=read.integer("WEB_THREADS", ServerSettings.threads),
        worker_processes=read.integer("WORKER_PROCESSES", ServerSettings.worker_processes,
                                      maximum=64, minimum=0),
        metrics_port=metrics_port,
        metrics_host=read.host("METRICS_HOST", "") if read.text("METRICS_HOST", "") else None,
        metrics_dir=read.text("METRICS_DIR", "") or None,
    )


def storage_url(env: Mapping[str, str] | None = None) -> str:
    """STORAGE_URL alone (SettingsError when bad), for a command that reads only the store and
    so needs no token."""
    read = _Reader(os.environ if env is None else env)
    return read.storage_url("STORAGE_URL", Settings.storage_url)


def share_metrics(server: ServerSettings) -> None:
    """Before ``serve`` starts its processes: empty the directory they all write their metrics
    to (METRICS_DIR) and name it to them in PROMETHEUS_MULTIPROC_DIR, which prometheus_client
    reads as it is imported: set here, once the directory exists, since a process importing it
    with a directory missing would fail. The default is one folder per METRICS_PORT in the
    temporary directory: two bots on one host cannot share that port."""
    directory = server.metrics_dir or os.path.join(
        tempfile.gettempdir(), f"instant-connect-bot-metrics-{server.metrics_port}")
    scrape.empty(directory)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


class _Reader:
    """Reads one variable at a time and names it in every complaint."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        return self._env.get(name, "").strip() or default

    def required(self, name: str) -> str:
        value = self._env.get(name, "").strip()
        if not value:
            raise SettingsError(f"{name} is not set: the bot needs its Webex bot token.")
        return value

    def webhook_secret(self, name: str) -> Secret | None:
        """A webhook secret of real strength, or None when unset."""
        value = self.text(name, "")
        if value and len(value) < MIN_WEBHOOK_SECRET_LENGTH:
            raise SettingsError(
                f"{name} must be at least {MIN_WEBHOOK_SECRET_LENGTH} characters: it is all that "
                "proves a webhook came from Webex, so a short one can be guessed (make one with "
                "'python -c \"import secrets; print(secrets.token_hex(16))\"').")
        return Secret(value) if value else None

    def keyring(self, name: str) -> Keyring | None:
        """Keys to seal with, comma-separated (the first seals), or None when unset."""
        value = self.text(name, "")
        try:
            return Keyring.parse(value) if value else None
        except ValueError as error:
            raise SettingsError(f"{name}: {error}.") from None

    def needed(self, name: str, *, by: str) -> str:
        value = self.text(name, "")
        if not value:
            raise SettingsError(f"{name} is not set, and {by} needs it.")
        return value

    def email(self, name: str, *, needed_by: str) -> str:
        value = self.needed(name, by=needed_by)
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError:
            raise SettingsError(f"{name} must be an email address like bot@example.org.") from None

    def file(self, name: str) -> str | None:
        value = self.text(name, "")
        if value and not os.path.isfile(value):
            raise SettingsError(f"{name} must name a file that exists.")
        return value or None

    def region(self, name: str) -> str | None:
        value = self.text(name, "").upper()
        if value and value not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError(f"{name} must be a two-letter country code such as FR or US.")
        return value or None

    def url(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not value:
            return value
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"{name} must be an http:// or https:// URL.")
        return value

    def path(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not value.startswith("/"):
            raise SettingsError(f"{name} must be a path starting with '/', such as /webhooks.")
        return value

    def number(self, name: str, default: float) -> float:
        value = self.text(name, "")
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number.") from None
        if not math.isfinite(number):
            raise SettingsError(f"{name} must be a number.")
        if number <= 0:
            raise SettingsError(f"{name} must be greater than zero.")
        return number

    def integer(
        self, name: str, default: int, maximum: int | None = None, *, minimum: int = 1,
        why: str = "",
    ) -> int:
        """A whole number within bounds; ``why`` explains the minimum (", so that ...")."""
        value = self.text(name, "")
        if not value:
            return default
        digits = value.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):  # int() would take "1_0" and " +3"
            raise SettingsError(f"{name} must be a whole number.")
        number = int(value)
        if number < minimum:
            raise SettingsError(f"{name} must be greater than zero{why}." if minimum == 1
                                else f"{name} must be {minimum} or more{why}.")
        if maximum is not None and number > maximum:
            raise SettingsError(f"{name} must be at most {maximum}.")
        return number

    def host(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if value != "localhost":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise SettingsError(f"{name} must be an IP address to listen on, such as "
                                    "0.0.0.0, :: or 127.0.0.1.") from None
        return value

    def storage_url(self, name: str, default: str) -> str:
        value = self.text(name, default)
        try:
            check_store_url(value)
        except ValueError as error:
            raise SettingsError(f"{name}: {error}") from None
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name, "").lower()
        if not value:
            return default
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false.")

    def items(self, name: str) -> list[str]:
        return [item.strip() for item in self.text(name, "").split(",") if item.strip()]

    def lowercase_set(self, name: str) -> frozenset[str]:
        return frozenset(item.lower() for item in self.items(name))

    def choice(
        self, name: str, default: str, allowed: tuple[str, ...], *, upper: bool = False
    ) -> str:
        value = self.text(name, default)
        value = value.upper() if upper else value
        if value != default and value not in allowed:
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}.")
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if known_zone(value) is None:
            raise SettingsError(f"{name} must be an IANA time zone such as Europe/Paris.")
        return value

    def duration_seconds(
        self, name: str, default: timedelta, minimum: str | None = None, *,
        allow_zero: bool = False,
    ) -> float:
        value = self.text(name, "")
        if not value:
            return default.total_seconds()
        if allow_zero and value == "0":
            return 0.0
        duration = parse_duration(value)
        if duration is None:
            zero = " (0 turns it off)" if allow_zero else ""
            raise SettingsError(f"{name} must be a duration such as 30m, 1h or 1d{zero}.")
        if minimum is not None and duration < (parse_duration(minimum) or duration):
            raise SettingsError(f"{name} must be at least {minimum}.")
        return duration.total_seconds()

    def validity(self, name: str, default: str) -> str:
        """How long links stay valid, as people may type it in the chat (``valid=3h``)."""
        value = self.text(name, default)
        duration = parse_duration(value)
        if duration is None or not MIN_VALIDITY <= duration <= MAX_VALIDITY:
            raise SettingsError(f"{name} must be a duration {VALIDITY_RANGE}, such as 90m, 3h "
                                "or 3d, as people may type valid= in the chat.")
        return value

    def lead_time(self, name: str, default: str) -> str:
        """How long before a meeting guests are reminded, as people may type it in the chat
        (``remind=1h``, ``remind=none``)."""
        value = self.text(name, default)
        try:
            lead_time(value)
        except ValueError:
            raise SettingsError(f"{name} must be a duration {LEAD_RANGE}, such as 15m, 1h or "
                                "1d, as people may type remind= in the chat.") from None
        return value

    def catalog(self, name: str) -> tuple[CatalogDevice, ...]:
        """``Name=sip:uri`` pairs separated by semicolons, e.g. ``Room 1=room1@example.com``."""
        devices = []
        for entry in self.text(name, "").split(";"):
            if not entry.strip():
                continue
            label, sep, uri = entry.partition("=")
            if not sep or not label.strip() or "@" not in uri:
                raise SettingsError(
                    f"{name} must look like 'Room 1=room1@example.com;Lab=lab@example.com'."
                )
            devices.append(CatalogDevice(name=label.strip(), sip_uri=uri.strip()))
        return tuple(devices)
