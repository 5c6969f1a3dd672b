"""Shared fixtures: the sandbox, and a real bot process served over a real socket against it."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.in_process import serve_locally
from bot.devtools.sandbox import Sandbox
from bot.jobs.storage import Store, open_store
from bot.listen.catch_up import CatchUpLimits
from bot.listen.listener import ListenConfig
from bot.logs import JsonFormatter
from bot.secret import Secret
from bot.service import BotService
from bot.settings import Settings
from bot.upstream.instant_connect.config import InstantConnectConfig
from bot.upstream.retry import RetryPolicy
from cards.inputs import CatalogDevice
from tests.support.card_schema import validate_card
from tests.support.faults import redis_server
from tests.support.keys import MEETING_KEYS, TEST_KEYRING

WEBHOOK_SECRET = "test-webhook-secret-5f1c"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_wait=0.05)
CATALOG = (
    CatalogDevice("Exam Room 1", "exam-room-1@clinic.example.com"),
    CatalogDevice("Cart 7", "cart-7@clinic.example.com"),
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store in a SQLite file of its own."""
    store = open_store(f"sqlite:///{tmp_path}/store.sqlite3")
    yield store
    store.close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server for the module (each test takes its own key prefix)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=11) as box:
        yield box


def quick_listen(box: Sandbox, **changes: Any) -> ListenConfig:
    """The listener's settings for the sandbox, with backoffs and keep-alive in fractions of a
    second so the fault tests run quickly."""
    config = ListenConfig(u2c_url=box.u2c_url, ping_interval=1.0, pong_timeout=1.0,
                          backoff_base=0.02, backoff_cap=0.2, replaced_wait=0.2,
                          lease_seconds=3.0, open_timeout=2.0,
                          catch_up=CatchUpLimits(window_seconds=600))
    return replace(config, **changes)


def sandbox_settings(box: Sandbox, tmp_path: Any, **changes: Any) -> Settings:
    """Settings that point every client at the sandbox and keep test retries quick."""
    settings = Settings(
        bot_token=Secret(box.bot_token),
        webex_base_url=box.webex_base_url,
        listen=quick_listen(box),
        instant_connect=InstantConnectConfig(
            broker_url=box.broker_url, retry=FAST_RETRY, read_timeout=5.0
        ),
        webhook_secret=Secret(WEBHOOK_SECRET),
        meeting_keys=TEST_KEYRING,
        storage_url=f"sqlite:///{tmp_path}/bot.sqlite3",
        worker_threads=4,
        device_catalog=CATALOG,
        default_timezone="Europe/Paris",
        retry=FAST_RETRY,
    )
    return replace(settings, **changes)


@dataclass
class RunningBot:
    """A bot served on a real port, its webhooks registered in the sandbox."""

    sandbox: Sandbox
    service: BotService
    url: str

    def bot_messages(self, room: dict[str, Any]) -> list[dict[str, Any]]:
        """What the bot has said in a space so far."""
        bot_id = self.sandbox.bot["id"]
        return [m for m in self.sandbox.messages_in(room) if m["personId"] == bot_id]

    def wait_for_bot_messages(self, room: dict[str, Any], count: int) -> list[dict[str, Any]]:
        """Block until the bot has posted ``count`` messages in the space (no sleeping)."""
        return self.sandbox.wait_for(
            lambda: (found := self.bot_messages(room)) and len(found) >= count and found,
            timeout=10.0,
        )

    def idle(self) -> None:
        """Block until every event sent has been stored and processed."""
        if self.service.listener is not None:
            self.sandbox.wait_for(self.sandbox.mercury_settled, timeout=10.0)
        assert self.service.wait_until_idle(timeout=10.0), "events still unprocessed"


def serve(box: Sandbox, settings: Settings) -> Iterator[RunningBot]:
    """Run the bot on an OS-chosen port and point its webhooks at it, or let it open its
    websocket (as ``EVENTS`` says)."""
    with serve_locally(settings) as local:
        if settings.webhooks:
            for resource in ("messages", "attachmentActions", "memberships"):
                box.register_webhook(local.webhook_url, WEBHOOK_SECRET, resource, "created",
                                     name=f"bot {resource}")
        listener = local.service.listener
        if listener is not None:
            assert listener.wait_until_connected(timeout=10.0), "the websocket did not open"
        yield RunningBot(box, local.service, local.webhook_url)
    assert_cards_valid(box)


def report_fuzz_cases(request: pytest.FixtureRequest, what: str, tried: Counter[str]) -> None:
    """Print how many cases each fuzz target of a module tried, past pytest's output capture."""
    summary = "; ".join(f"{target}: {count}" for target, count in sorted(tried.items()))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and summary:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{what} fuzz cases tried: {summary}")


def assert_cards_valid(box: Sandbox) -> None:
    """Every card the bot sent must be a valid Adaptive Card 1.3 that Webex renders."""
    for recorded in box.requests_matching("POST", "/v1/messages"):
        for attachment in (recorded.json or {}).get("attachments") or []:
            validate_card(attachment["content"])


@pytest.fixture
def events() -> str:
    """How the running bot hears Webex (EVENTS); scenario modules run over both."""
    return "webhooks"


@pytest.fixture
def running_bot(sandbox: Sandbox, tmp_path: Any, events: str) -> Iterator[RunningBot]:
    yield from serve(sandbox, sandbox_settings(sandbox, tmp_path, events=events))


# Session-wide log audit: no token, secret, cipher or contact in any log line -------------------

SANDBOX_TOKEN = re.compile(r"sandbox-bot-token-[0-9a-f]{24}")  # every Sandbox(seed=...) token
JWE = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){4}")  # compact JWE: five parts
# Guests' contacts: the tests give guests addresses at example.org, and mobile numbers in E.164.
CONTACT = re.compile(r"[\w.+-]+@example\.org\b|\+\d{10,15}\b")


def leaks(line: str) -> list[str]:
    """The bot tokens, webhook secret, meeting key, JWE ciphers (Instant Connect links) and
    guests' contacts in one log line."""
    found = SANDBOX_TOKEN.findall(line) + JWE.findall(line) + CONTACT.findall(line)
    return found + [name for name, secret in (("WEBHOOK_SECRET", WEBHOOK_SECRET),
                                              ("MEETING_KEYS", MEETING_KEYS)) if secret in line]


class LogAudit(logging.Handler):
    """Formats every record as the bot's JSON lines, unmasked, and keeps those that leak."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())  # no secrets given: nothing is masked
        self.lines = 0
        self.test = "(collection)"
        self.found: list[tuple[str, list[str], str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Format one record and remember it when it leaks."""
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is still audited
            line = repr(vars(record))
        self.lines += 1
        if secrets := leaks(line):
            self.found.append((self.test, secrets, line))


LOG_AUDIT = LogAudit()


def pytest_configure(config: pytest.Config) -> None:
    """Audit every log record of the session, at every level, from every thread; and keep the
    bot processes tests start from taking the one default metrics port (those that scrape give
    a free port of their own)."""
    os.environ.setdefault("METRICS_PORT", "0")
    root = logging.getLogger()
    root.addHandler(LOG_AUDIT)
    root.setLevel(logging.DEBUG)


SLOW_TEST_TIMEOUT = 900  # seconds: a fault run kills and restarts processes for minutes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests get a longer time limit unless they set their own."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the test in the audit; re-attach it if a test replaced the root handlers."""
    LOG_AUDIT.test = item.nodeid
    root = logging.getLogger()
    if LOG_AUDIT not in root.handlers:
        root.addHandler(LOG_AUDIT)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the whole session when any log line carried a secret or a cipher."""
    if LOG_AUDIT.found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say what the log audit found, first thing a reader sees when it failed."""
    if not LOG_AUDIT.found:
        terminalreporter.write_line(f"log audit: {LOG_AUDIT.lines} log lines, no token, "
                                    "webhook secret, meeting key, cipher or guest contact")
        return
    terminalreporter.write_sep("=", "log audit FAILED: secrets, ciphers or contacts in the logs",
                               red=True)
    for test, secrets, line in LOG_AUDIT.found[:20]:
        shown = ", ".join(sorted({secret[:24] + "..." for secret in secrets}))
        terminalreporter.write_line(f"{test}: {shown}\n    {line[:400]}")
    terminalreporter.write_line(f"{len(LOG_AUDIT.found)} leaking log lines in all.")
