"""Every setting the bot has, read from the environment in exactly one place.

Usage::

    settings = Settings.from_env(os.environ)      # raises SettingsError naming the variable
    client = InstantConnectClient(settings.bot_token, settings.instant_connect)

Nothing else in the bot reads ``os.environ``; tests build ``Settings(...)`` directly.
Secrets are wrapped in :class:`Secret` so a repr, a log line or an error never shows them.
"""

from __future__ import annotations

import ipaddress
import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from bot.conversation.timewindow import parse_duration
from bot.jobs.storage import DEFAULT_RETENTION_SECONDS, check_store_url
from bot.upstream.retry import RetryPolicy
from cards.inputs import VALID_FOR_CHOICES, CatalogDevice

DEFAULT_AUDIENCE = "a4d886b0-979f-4e2c-a958-3e8c14605e51"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_RETENTION = "1h"  # Webex redelivers a failed webhook for a while


class SettingsError(ValueError):
    """A variable is missing or invalid; the message names it and never shows its value."""


class Secret:
    """A string that refuses to be printed; ``reveal()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class InstantConnectConfig:
    """Where the broker is, how to build links from its ciphers, and how patiently to call it.

    ``{vertical}`` in a long-URL base becomes ``gen`` or ``hc``, so healthcare links get the
    healthcare pages; a base without it is used as given.
    """

    broker_url: str = "https://mtg-broker-a.wbx2.com"
    audience: str = DEFAULT_AUDIENCE
    host_url_base: str = "https://instant.webex.com/{vertical}/v1/login?int=jose&v=1&data="
    guest_url_base: str = "https://instant.webex.com/{vertical}/v1/talk?int=jose&v=1&data="
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class AccessPolicy:
    """Who may use the bot. With every list empty, only people of the bot's own organisation."""

    allowed_domains: frozenset[str] = frozenset()
    allowed_people: frozenset[str] = frozenset()
    allowed_org_ids: frozenset[str] = frozenset()
    allow_everyone: bool = False

    @property
    def is_open_to_own_org_only(self) -> bool:
        """True when nothing was configured, so the safe default applies."""
        return not (
            self.allow_everyone
            or self.allowed_domains
            or self.allowed_people
            or self.allowed_org_ids
        )


@dataclass(frozen=True)
class ServerSettings:
    """How ``python -m bot serve`` runs gunicorn: where it listens and how many of what."""

    host: str = "0.0.0.0"
    port: int = 8080
    processes: int = 2  # WEB_CONCURRENCY
    threads: int = 8  # WEB_THREADS, per process

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerSettings:
        """Read HOST, PORT, WEB_CONCURRENCY and WEB_THREADS (SettingsError naming a bad one)."""
        read = _Reader(env)
        return cls(
            host=read.host("HOST", cls.host),
            port=read.integer("PORT", cls.port, maximum=65535),
            processes=read.integer("WEB_CONCURRENCY", cls.processes),
            threads=read.integer("WEB_THREADS", cls.threads),
        )

    @property
    def bind(self) -> str:
        """gunicorn's ``--bind``: an IPv6 address goes in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one bot deployment."""

    bot_token: Secret
    webex_base_url: str = "https://webexapis.com/v1/"
    webex_timeout: float = 20.0
    instant_connect: InstantConnectConfig = field(default_factory=InstantConnectConfig)
    webhook_secret: Secret | None = None
    allow_unsigned_webhooks: bool = False
    webhook_path: str = "/webhooks"
    public_url: str | None = None
    max_body_bytes: int = 256 * 1024
    # Not in the repr: a Redis URL may carry a password.
    storage_url: str = field(default="sqlite:///data/instant-connect-bot.sqlite3", repr=False)
    allow_volatile_storage: bool = False
    dedupe_retention: timedelta = timedelta(seconds=DEFAULT_RETENTION_SECONDS)
    worker_threads: int = 32  # mostly waiting on Webex and the broker; see README Performance
    job_lease_seconds: float = 60.0
    max_attempts: int = 5
    max_backlog: int = 10_000
    access: AccessPolicy = field(default_factory=AccessPolicy)
    device_catalog: tuple[CatalogDevice, ...] = ()
    default_timezone: str = "UTC"
    default_valid_for: str = "2h"
    meetings_per_person: int = 30
    meetings_window: timedelta = timedelta(hours=1)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    server: ServerSettings = field(default_factory=ServerSettings)
    log_level: str | None = None  # None: each command's own default

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build and check the settings; a bad or missing variable raises SettingsError."""
        read = _Reader(env)
        broker = InstantConnectConfig(
            broker_url=read.url("IC_BROKER_URL", InstantConnectConfig.broker_url),
            audience=read.text("IC_AUDIENCE", DEFAULT_AUDIENCE),
            host_url_base=read.url("IC_HOST_URL_BASE", InstantConnectConfig.host_url_base),
            guest_url_base=read.url("IC_GUEST_URL_BASE", InstantConnectConfig.guest_url_base),
            connect_timeout=read.number("IC_CONNECT_TIMEOUT", 5.0),
            read_timeout=read.number("IC_READ_TIMEOUT", 20.0),
        )
        webex_url = read.url("WEBEX_API_URL", cls.webex_base_url)
        if not webex_url.rstrip("/").endswith("/v1"):
            raise SettingsError("WEBEX_API_URL must end with /v1, such as "
                                "https://webexapis.com/v1: every call would fail without it.")
        secret = read.text("WEBHOOK_SECRET", "")
        return cls(
            bot_token=Secret(read.required("WEBEX_BOT_TOKEN")),
            webex_base_url=webex_url if webex_url.endswith("/") else webex_url + "/",
            webex_timeout=read.number("WEBEX_TIMEOUT", 20.0),
            instant_connect=broker,
            webhook_secret=Secret(secret) if secret else None,
            allow_unsigned_webhooks=read.flag("ALLOW_UNSIGNED_WEBHOOKS", False),
            webhook_path=read.path("WEBHOOK_PATH", "/webhooks"),
            public_url=read.url("PUBLIC_URL", "") or None,
            max_body_bytes=read.integer("MAX_BODY_BYTES", cls.max_body_bytes),
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
            default_timezone=read.timezone("DEFAULT_TIMEZONE", "UTC"),
            default_valid_for=read.choice("DEFAULT_VALID_FOR", "2h", tuple(VALID_FOR_CHOICES)),
            meetings_per_person=read.integer("MEETINGS_PER_PERSON", cls.meetings_per_person),
            meetings_window=timedelta(
                seconds=read.duration_seconds("MEETINGS_WINDOW", cls.meetings_window)
            ),
            server=ServerSettings.from_env(env),
            log_level=read.choice("LOG_LEVEL", "", LOG_LEVELS, upper=True) or None,
        )

    def secret_values(self) -> list[str]:
        """Every secret in these settings, so the logs can mask them."""
        secrets = [self.bot_token, self.webhook_secret]
        values = [secret.reveal() for secret in secrets if secret is not None]
        try:
            storage_password = urlsplit(self.storage_url).password
        except ValueError:
            storage_password = None
        return values + ([storage_password] if storage_password else [])

    def require_webhook_secret(self) -> None:
        """Refuse to serve webhooks unsigned unless a developer said so explicitly."""
        if self.webhook_secret is None and not self.allow_unsigned_webhooks:
            raise SettingsError(
                "WEBHOOK_SECRET is not set. Set it (the same secret the webhooks were created "
                "with), or set ALLOW_UNSIGNED_WEBHOOKS=true for local development only."
            )


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

    def integer(self, name: str, default: int, maximum: int | None = None) -> int:
        value = self.text(name, "")
        if not value:
            return default
        if not (value.isascii() and value.isdigit()):  # int() would take "1_0" and " +3"
            raise SettingsError(f"{name} must be a whole number.")
        number = int(value)
        if number <= 0:
            raise SettingsError(f"{name} must be greater than zero.")
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
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{name} must be an IANA time zone such as Europe/Paris.") from None
        return value

    def duration_seconds(
        self, name: str, default: timedelta, minimum: str | None = None
    ) -> float:
        value = self.text(name, "")
        if not value:
            return default.total_seconds()
        duration = parse_duration(value)
        if duration is None:
            raise SettingsError(f"{name} must be a duration such as 30m, 1h or 1d.")
        if minimum is not None and duration < (parse_duration(minimum) or duration):
            raise SettingsError(f"{name} must be at least {minimum}.")
        return duration.total_seconds()

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
