"""Settings from the environment: every variable, every kind of bad value, and no secret shown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.secret import Secret
from bot.service import guest_channels
from bot.settings import Settings, SettingsError
from bot.upstream.instant_connect.config import DEFAULT_AUDIENCE
from bot.web.server import ServerSettings
from cards.inputs import VALID_FOR_CHOICES, CatalogDevice

TOKEN = "tok-Zm9vYmFyLXNlY3JldC10b2tlbg"
HOOK_SECRET = "whs-8c1d-very-secret"
REDIS_PASSWORD = "redis-pw-4e7a"
PROXY_PASSWORD = "proxy-pw-61c0"


def env(**values: str) -> dict[str, str]:
    """An environment with the token set, plus ``values``."""
    return {"WEBEX_BOT_TOKEN": TOKEN, **values}


FULL = env(
    WEBEX_API_URL="http://127.0.0.1:8099/v1",
    WEBEX_TIMEOUT="7.5",
    IC_BROKER_URL="https://broker.example.com",
    IC_AUDIENCE="aud-123",
    IC_HOST_URL_BASE="https://ic.example.com/{vertical}/login?data=",
    IC_GUEST_URL_BASE="https://ic.example.com/{vertical}/talk?data=",
    IC_CONNECT_TIMEOUT="2",
    IC_READ_TIMEOUT="11.5",
    WEBHOOK_SECRET=HOOK_SECRET,
    ALLOW_UNSIGNED_WEBHOOKS="yes",
    WEBHOOK_PATH="/webex/events",
    PUBLIC_URL="https://bot.example.com",
    MAX_BODY_BYTES="65536",
    STORAGE_URL=f"redis://:{REDIS_PASSWORD}@redis.example.com:6379/2",
    WORKER_THREADS="3",
    JOB_LEASE_SECONDS="45",
    MAX_ATTEMPTS="7",
    MAX_BACKLOG="500",
    ALLOWED_DOMAINS=" Example.COM, ,clinic.example.org ",
    ALLOWED_PEOPLE="Alice@Example.com,bob@example.com",
    ALLOWED_ORG_IDS="ORG-A, ORG-b",
    ALLOW_EVERYONE="off",
    DEVICE_CATALOG="Room 1=room1@example.com; Lab = lab@example.com ;",
    DEFAULT_TIMEZONE="Europe/Paris",
    DEFAULT_VALID_FOR="4h",
    MEETINGS_PER_PERSON="12",
    MEETINGS_WINDOW="30m",
    ALLOW_VOLATILE_STORAGE="true",
    DEDUPE_RETENTION="2d",
    HOST="::",
    PORT="9090",
    WEB_CONCURRENCY="4",
    WEB_THREADS="16",
    WORKER_PROCESSES="0",
    LOG_LEVEL="debug",
    EVENTS="both",
    U2C_URL="http://127.0.0.1:8099/u2c/api/v1",
    HTTPS_PROXY=f"http://bot:{PROXY_PASSWORD}@proxy.example.com:3128",
    CATCH_UP_WINDOW="30m",
)


def test_every_variable_is_read() -> None:
    """Each variable lands in its field, typed and normalised."""
    s = Settings.from_env(FULL)
    assert s.bot_token.reveal() == TOKEN
    assert s.webex_base_url == "http://127.0.0.1:8099/v1/"
    assert s.webex_timeout == 7.5
    ic = s.instant_connect
    assert (ic.broker_url, ic.audience) == ("https://broker.example.com", "aud-123")
    assert ic.host_url_base == "https://ic.example.com/{vertical}/login?data="
    assert ic.guest_url_base == "https://ic.example.com/{vertical}/talk?data="
    assert (ic.connect_timeout, ic.read_timeout) == (2.0, 11.5)
    assert s.webhook_secret is not None and s.webhook_secret.reveal() == HOOK_SECRET
    assert s.allow_unsigned_webhooks is True
    assert (s.webhook_path, s.public_url) == ("/webex/events", "https://bot.example.com")
    assert s.max_body_bytes == 65536 and isinstance(s.max_body_bytes, int)
    assert s.storage_url == FULL["STORAGE_URL"]
    assert s.worker_threads == 3 and isinstance(s.worker_threads, int)
    assert s.job_lease_seconds == 45.0
    assert (s.max_attempts, s.max_backlog) == (7, 500)
    assert s.access.allowed_domains == {"example.com", "clinic.example.org"}
    assert s.access.allowed_people == {"alice@example.com", "bob@example.com"}
    assert s.access.allowed_org_ids == {"ORG-A", "ORG-b"}
    assert s.access.allow_everyone is False
    assert not s.access.is_open_to_own_org_only
    assert s.device_catalog == (CatalogDevice("Room 1", "room1@example.com"),
                                CatalogDevice("Lab", "lab@example.com"))
    assert (s.default_timezone, s.default_valid_for) == ("Europe/Paris", "4h")
    assert s.meetings_per_person == 12 and isinstance(s.meetings_per_person, int)
    assert s.meetings_window == timedelta(minutes=30)
    assert s.allow_volatile_storage is True
    assert s.dedupe_retention == timedelta(days=2)
    assert s.server == ServerSettings(host="::", port=9090, processes=4, threads=16,
                                      worker_processes=0)
    assert s.server.bind == "[::]:9090"
    assert s.log_level == "DEBUG"
    assert s.events == "both" and s.webhooks and s.websocket
    assert s.listen.u2c_url == "http://127.0.0.1:8099/u2c/api/v1"
    assert s.listen.proxy == FULL["HTTPS_PROXY"]
    assert s.listen.catch_up.window_seconds == 1800


def test_only_the_token_gives_the_documented_defaults() -> None:
    """With just WEBEX_BOT_TOKEN every other setting has its safe default."""
    s = Settings.from_env(env())
    assert s == Settings(bot_token=Secret(TOKEN))
    assert s.webex_base_url == "https://webexapis.com/v1/"
    assert s.instant_connect.broker_url == "https://mtg-broker-a.wbx2.com"
    assert s.instant_connect.audience == DEFAULT_AUDIENCE
    assert s.webhook_secret is None and s.allow_unsigned_webhooks is False
    assert (s.webhook_path, s.public_url, s.device_catalog) == ("/webhooks", None, ())
    assert s.access.is_open_to_own_org_only
    assert (s.default_timezone, s.default_valid_for) == ("UTC", "2h")
    assert s.meetings_window == timedelta(hours=1)
    assert s.dedupe_retention == timedelta(days=7) and s.allow_volatile_storage is False
    assert s.server.bind == "0.0.0.0:8080" and (s.server.processes, s.server.threads) == (2, 8)
    assert s.log_level is None  # each command picks its own: INFO to serve, WARNING otherwise
    assert s.events == "webhooks" and s.webhooks and not s.websocket
    assert s.listen.u2c_url == "https://u2c.wbx2.com/u2c/api/v1" and s.listen.proxy is None
    assert s.listen.catch_up.window_seconds == 3600


@pytest.mark.parametrize("value", ["", "   "])
def test_a_missing_token_is_a_settings_error_naming_it(value: str) -> None:
    """No (or a blank) WEBEX_BOT_TOKEN: a clear error that names the variable."""
    environment = env(WEBHOOK_SECRET=HOOK_SECRET)
    environment["WEBEX_BOT_TOKEN"] = value
    with pytest.raises(SettingsError, match="WEBEX_BOT_TOKEN"):
        Settings.from_env(environment)
    del environment["WEBEX_BOT_TOKEN"]
    with pytest.raises(SettingsError, match="WEBEX_BOT_TOKEN"):
        Settings.from_env(environment)


BAD = [
    ("WEBEX_API_URL", "ftp://webexapis.com/v1"),
    ("WEBEX_API_URL", "webexapis.com/v1"),
    ("WEBEX_API_URL", "https://"),
    ("WEBEX_API_URL", "http://[::1"),
    ("IC_BROKER_URL", "broker"),
    ("IC_HOST_URL_BASE", "javascript:alert(1)"),
    ("IC_GUEST_URL_BASE", "//instant.webex.com/talk"),
    ("PUBLIC_URL", "bot.example.com"),
    ("WEBEX_TIMEOUT", "soon"),
    ("WEBEX_TIMEOUT", "0"),
    ("WEBEX_TIMEOUT", "inf"),
    ("IC_CONNECT_TIMEOUT", "-1"),
    ("IC_READ_TIMEOUT", "nan"),
    ("JOB_LEASE_SECONDS", "a minute"),
    ("MAX_BODY_BYTES", "big"),
    ("MAX_BODY_BYTES", "1.5"),
    ("WORKER_THREADS", "0.5"),
    ("WORKER_THREADS", "nan"),
    ("WORKER_THREADS", "0"),
    ("MEETINGS_PER_PERSON", "-3"),
    ("ALLOW_UNSIGNED_WEBHOOKS", "maybe"),
    ("ALLOW_EVERYONE", "2"),
    ("WEBHOOK_PATH", "webhooks"),
    ("DEVICE_CATALOG", "Room 1"),
    ("DEVICE_CATALOG", "=room1@example.com"),
    ("DEVICE_CATALOG", "Room 1=room1.example.com"),
    ("DEFAULT_TIMEZONE", "Mars/Olympus_Mons"),
    ("DEFAULT_TIMEZONE", "Europe"),
    ("DEFAULT_TIMEZONE", "../../etc/passwd"),
    ("DEFAULT_VALID_FOR", "3x"),
    ("DEFAULT_VALID_FOR", "31d"),
    ("DEFAULT_VALID_FOR", "1m"),
    ("MAX_BODY_BYTES", "1024"),
    ("MEETINGS_WINDOW", "soon"),
    ("MEETINGS_WINDOW", "0m"),
    ("MAX_BACKLOG", "1_000"),
    ("MAX_ATTEMPTS", " +3"),
    ("WEBEX_API_URL", "https://webexapis.com"),
    ("WEBEX_API_URL", "https://webexapis.com/v2/"),
    ("STORAGE_URL", "mysql://db/bot"),
    ("STORAGE_URL", "sqlite:///:memory:"),
    ("STORAGE_URL", "redis://cache:six/0"),
    ("ALLOW_VOLATILE_STORAGE", "perhaps"),
    ("DEDUPE_RETENTION", "30m"),
    ("DEDUPE_RETENTION", "a week"),
    ("HOST", "0.0.0.0:8080/"),
    ("HOST", "bot.example.com"),
    ("PORT", "0"),
    ("PORT", "65536"),
    ("PORT", "http"),
    ("WEB_CONCURRENCY", "two"),
    ("WEB_THREADS", "-1"),
    ("WORKER_PROCESSES", "-1"),
    ("WORKER_PROCESSES", "65"),
    ("LOG_LEVEL", "LOUD"),
    ("SMTP_URL", "http://mail.example.com"),
    ("SMTP_URL", "smtp://"),
    ("SMTP_URL", "smtps://mail.example.com:tls"),
    ("DEFAULT_PHONE_REGION", "France"),
    ("EVENTS", "sockets"),
    ("U2C_URL", "u2c.wbx2.com"),
    ("HTTPS_PROXY", "proxy.example.com:3128"),
    ("CATCH_UP_WINDOW", "an hour"),
    ("CATCH_UP_WINDOW", "-1h"),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_a_bad_value_is_a_settings_error_naming_the_variable(name: str, value: str) -> None:
    """Every kind of bad value: SettingsError (nothing else) with the variable's name."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env(WEBHOOK_SECRET=HOOK_SECRET, **{name: value}))
    message = str(raised.value)
    assert message.startswith(name)
    assert TOKEN not in message and HOOK_SECRET not in message


VALIDATED = sorted({name for name, _ in BAD})


@pytest.mark.parametrize("name", VALIDATED)
@pytest.mark.parametrize("secret", [TOKEN, HOOK_SECRET])
def test_a_secret_pasted_into_the_wrong_variable_is_not_shown(name: str, secret: str) -> None:
    """The error for a misplaced secret names the variable but never echoes the value."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env(WEBHOOK_SECRET=HOOK_SECRET, **{name: secret}))
    assert name in str(raised.value)
    assert secret not in str(raised.value)
    assert secret not in repr(raised.value)


def test_no_secret_appears_in_the_repr_or_str_of_the_settings() -> None:
    """Token, webhook secret and a storage password are all hidden from repr and str."""
    s = Settings.from_env(FULL)
    for shown in (repr(s), str(s), f"{s}", repr(s.bot_token), str(s.webhook_secret)):
        for secret in (TOKEN, HOOK_SECRET, REDIS_PASSWORD, PROXY_PASSWORD):
            assert secret not in shown
    assert "***" in repr(s)


def test_secret_values_lists_every_secret_for_the_log_masking() -> None:
    """The logs mask the token, the webhook secret and a password in the storage URL."""
    assert set(Settings.from_env(FULL).secret_values()) == {TOKEN, HOOK_SECRET, REDIS_PASSWORD,
                                                            PROXY_PASSWORD}
    assert Settings.from_env(env()).secret_values() == [TOKEN]


MAIL_PASSWORD = "smtp-pw-93b1"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
GUESTS = env(SMTP_URL=f"smtps://bot:{MAIL_PASSWORD}@mail.example.com", MAIL_FROM="Bot@Example.com",
             TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
             TWILIO_FROM="+15005550006", DEFAULT_PHONE_REGION="fr",
             ORG_NAME=" Clinique du Parc ")


def test_email_and_sms_to_guests_are_set_up_together_with_their_secrets_masked() -> None:
    s = Settings.from_env(GUESTS)
    assert s.mail is not None and s.mail.mail_from == "Bot@example.com"
    assert s.sms is not None and s.sms.from_number == "+15005550006"
    assert s.sms.api_url == "https://api.twilio.com" and s.phone_region == "FR"
    assert s.conversation_config().phone_region == "FR"
    assert s.org_name == s.conversation_config().org_name == "Clinique du Parc"
    assert {MAIL_PASSWORD, TWILIO_TOKEN} <= set(s.secret_values())
    for secret in (MAIL_PASSWORD, TWILIO_TOKEN):
        assert secret not in repr(s)
    plain = Settings.from_env(env())
    assert plain.mail is None and plain.sms is None and plain.phone_region is None
    assert plain.org_name == ""  # guests then read the person's name alone


@pytest.mark.parametrize(("missing", "named"), [
    ({"MAIL_FROM": ""}, "MAIL_FROM is not set, and SMTP_URL needs it."),
    ({"MAIL_FROM": "bot at example"}, "MAIL_FROM must be an email address"),
    ({"SMTP_CA_FILE": "/no/such/ca.pem"}, "SMTP_CA_FILE must name a file that exists."),
    ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN is not set, and TWILIO_ACCOUNT_SID needs it."),
    ({"TWILIO_FROM": ""}, "TWILIO_FROM is not set, and TWILIO_ACCOUNT_SID needs it."),
    ({"TWILIO_API_URL": "api.twilio.com"}, "TWILIO_API_URL must be an http:// or https:// URL."),
])
def test_a_guest_channel_set_up_wrong_is_one_line_naming_what_to_fix(
    missing: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**GUESTS, **missing})
    assert str(raised.value).startswith(named)
    assert MAIL_PASSWORD not in str(raised.value) and TWILIO_TOKEN not in str(raised.value)


def test_secrets_compare_by_value_but_never_print_it() -> None:
    """Two Secrets with the same value are equal; printing one shows stars."""
    assert Secret("hunter2") == Secret("hunter2") != Secret("hunter3")
    assert Secret("hunter2") != "hunter2"
    assert hash(Secret("hunter2")) == hash(Secret("hunter2"))
    assert "hunter2" not in repr(Secret("hunter2")) + str(Secret("hunter2"))
    assert Secret("hunter2").reveal() == "hunter2"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "https://webexapis.com/v1/"),
        ("http://127.0.0.1:8099/v1", "http://127.0.0.1:8099/v1/"),
        ("http://127.0.0.1:8099/v1/", "http://127.0.0.1:8099/v1/"),
        ("  https://webexapis.com/v1  ", "https://webexapis.com/v1/"),
    ],
)
def test_the_webex_base_url_always_ends_with_a_slash(given: str | None, expected: str) -> None:
    """webexpythonsdk drops /v1 without the trailing slash, so it is always added."""
    values = {} if given is None else {"WEBEX_API_URL": given}
    assert Settings.from_env(env(**values)).webex_base_url == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), ("On", True),
     ("0", False), ("false", False), ("no", False), ("OFF", False), ("", False)],
)
@pytest.mark.parametrize("name", ["ALLOW_UNSIGNED_WEBHOOKS", "ALLOW_EVERYONE"])
def test_flags_accept_the_usual_spellings(name: str, value: str, expected: bool) -> None:
    """true/false, yes/no, on/off, 1/0 in any case; empty is the default (false)."""
    s = Settings.from_env(env(**{name: value}))
    got = {"ALLOW_UNSIGNED_WEBHOOKS": s.allow_unsigned_webhooks,
           "ALLOW_EVERYONE": s.access.allow_everyone}[name]
    assert got is expected


@pytest.mark.parametrize("choice", list(VALID_FOR_CHOICES))
def test_every_offered_validity_is_a_valid_default(choice: str) -> None:
    """DEFAULT_VALID_FOR accepts exactly the form's choices."""
    assert Settings.from_env(env(DEFAULT_VALID_FOR=choice)).default_valid_for == choice


@pytest.mark.parametrize(
    ("value", "expected"),
    [("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)),
     ("90 minutes", timedelta(minutes=90))],
)
def test_meetings_window_reads_durations(value: str, expected: timedelta) -> None:
    """MEETINGS_WINDOW takes a duration with a unit."""
    assert Settings.from_env(env(MEETINGS_WINDOW=value)).meetings_window == expected


def test_the_device_catalog_keeps_order_and_trims_entries() -> None:
    """The documented form "Name=address;Name=address" gives named devices, in order."""
    catalog = Settings.from_env(
        env(DEVICE_CATALOG="Room 1=room1@example.com;Lab=lab@example.com")
    ).device_catalog
    assert [(d.name, d.sip_uri) for d in catalog] == [
        ("Room 1", "room1@example.com"), ("Lab", "lab@example.com")
    ]


def test_webhooks_are_refused_without_a_secret_unless_explicitly_allowed() -> None:
    """require_webhook_secret names both variables; the opt-out or a secret satisfies it."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env()).require_webhook_secret()
    assert "WEBHOOK_SECRET" in str(raised.value)
    assert "ALLOW_UNSIGNED_WEBHOOKS" in str(raised.value)
    Settings.from_env(env(ALLOW_UNSIGNED_WEBHOOKS="true")).require_webhook_secret()
    Settings.from_env(env(WEBHOOK_SECRET=HOOK_SECRET)).require_webhook_secret()


def test_the_websocket_alone_needs_no_webhook_secret() -> None:
    Settings.from_env(env(EVENTS="websocket")).require_webhook_secret()
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        Settings.from_env(env(EVENTS="both")).require_webhook_secret()


def test_a_catch_up_window_of_0_turns_the_catch_up_off() -> None:
    assert Settings.from_env(env(CATCH_UP_WINDOW="0")).listen.catch_up.window_seconds == 0
    assert Settings.from_env(env(https_proxy="http://proxy:3128")).listen.proxy == \
        "http://proxy:3128"


@pytest.mark.parametrize("name", ["WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS"])
@pytest.mark.parametrize("weak", ["Z", "s3cret", "fifteen-chars!!"])
def test_a_weak_webhook_secret_is_one_line_naming_it_and_saying_why(name: str, weak: str) -> None:
    """A secret under 16 characters is refused, the variable named, the reason given, the
    value never shown."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env(**{"WEBHOOK_SECRET": HOOK_SECRET, name: weak}))
    message = str(raised.value)
    assert message.startswith(f"{name} must be at least 16 characters") and "\n" not in message
    assert "guessed" in message and weak not in message.split(":", 1)[1]


def test_a_previous_webhook_secret_is_read_and_masked_during_a_rotation() -> None:
    """WEBHOOK_SECRET_PREVIOUS is accepted beside the new secret, reaches the intake and is
    masked in the logs like the current one; alone it is a mistake, named."""
    rotating = Settings.from_env(env(WEBHOOK_SECRET=HOOK_SECRET,
                                     WEBHOOK_SECRET_PREVIOUS="whs-old-one-being-retired"))
    assert rotating.previous_webhook_secret == Secret("whs-old-one-being-retired")
    assert rotating.intake_config().previous_webhook_secret == rotating.previous_webhook_secret
    assert {HOOK_SECRET, "whs-old-one-being-retired"} <= set(rotating.secret_values())
    with pytest.raises(SettingsError, match=r"^WEBHOOK_SECRET_PREVIOUS is set without"):
        Settings.from_env(env(WEBHOOK_SECRET_PREVIOUS="whs-old-one-being-retired"))


def test_a_blank_webhook_secret_counts_as_none() -> None:
    """WEBHOOK_SECRET of spaces is not a secret: the bot still refuses to serve unsigned."""
    s = Settings.from_env(env(WEBHOOK_SECRET="   "))
    assert s.webhook_secret is None
    with pytest.raises(SettingsError):
        s.require_webhook_secret()


def test_a_storage_password_is_never_in_the_error() -> None:
    """A bad STORAGE_URL is named without its userinfo, wherever the mistake is."""
    for url in (f"redis://:{REDIS_PASSWORD}@cache:six/0", f"postgres://u:{REDIS_PASSWORD}@db/x",
                f"redis://u:{REDIS_PASSWORD}@cache/zero"):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env(env(STORAGE_URL=url))
        assert REDIS_PASSWORD not in str(raised.value)


def test_the_guest_channels_are_one_list_built_from_the_settings() -> None:
    """Each channel the bot knows, in the order a contact is read; one without settings is
    off (so a contact for it is refused by name), never missing."""
    built = guest_channels(Settings.from_env(GUESTS), pool_size=2)
    assert [(channel.name, channel.ready) for channel in built] == [("email", True), ("sms", True)]
    plain = guest_channels(Settings.from_env(env()), pool_size=2)
    assert [(channel.name, channel.ready) for channel in plain] == [
        ("email", False), ("sms", False)]
