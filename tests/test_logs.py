"""Structured logs: one JSON object per line, extra fields and bound context, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import logs
from bot.logs import JsonFormatter, bind

TOKEN = "tok-NjY2ZmYtYm90LXRva2Vu"
HOOK_SECRET = "whs-3f9a-secret"


class Capture:
    """A logger whose lines go to a buffer through the formatter under test."""

    def __init__(self, secrets: tuple[str, ...] = (TOKEN, HOOK_SECRET)) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(JsonFormatter(secrets))
        self.logger = logging.getLogger(f"tests.logs.{id(self)}")
        self.logger.handlers[:] = [handler]
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        """Every line parsed; fails if any line is not a JSON object."""
        lines = self.text.splitlines()
        parsed = [json.loads(line) for line in lines]
        assert all(isinstance(entry, dict) for entry in parsed)
        return parsed

    def only(self) -> dict[str, Any]:
        (entry,) = self.entries()
        return entry


@pytest.fixture
def capture() -> Capture:
    return Capture()


def test_a_record_is_one_json_line_with_its_basics(capture: Capture) -> None:
    """time, level, logger and the formatted message, on a single line."""
    capture.logger.warning("delivery %s refused\nfor %s", "D1", "a reason")
    assert capture.text.count("\n") == 1
    entry = capture.only()
    assert entry["level"] == "warning"
    assert entry["logger"] == capture.logger.name
    assert entry["message"] == "delivery D1 refused\nfor a reason"
    written = datetime.fromisoformat(entry["time"])
    assert entry["time"].endswith("Z") and written.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - written).total_seconds()) < 60


def test_extra_fields_become_top_level_keys(capture: Capture) -> None:
    """extra={...} appears as is; values JSON cannot encode are written as text."""
    when = datetime(2026, 3, 2, 20, 26, tzinfo=UTC)
    capture.logger.info("accepted", extra={"event_id": "E1", "attempt": 2, "ok": True,
                                           "tags": ["a", "b"], "at": when, "nested": {"k": 1}})
    entry = capture.only()
    assert {k: entry[k] for k in ("event_id", "attempt", "ok", "tags", "nested")} == {
        "event_id": "E1", "attempt": 2, "ok": True, "tags": ["a", "b"], "nested": {"k": 1}}
    assert entry["at"] == str(when)
    for standard in ("args", "msg", "levelno", "pathname", "thread"):
        assert standard not in entry


def test_bound_context_is_added_inside_the_block_only(capture: Capture) -> None:
    """bind() adds its fields to every line in the block, nests, and is gone afterwards."""
    with bind(event_id="E7", resource="messages"):
        capture.logger.info("outer")
        with bind(job_attempt=3, resource="attachmentActions"):
            capture.logger.info("inner")
        capture.logger.info("outer again")
    capture.logger.info("after")
    outer, inner, again, after = capture.entries()
    assert (outer["event_id"], outer["resource"]) == ("E7", "messages")
    assert "job_attempt" not in outer
    assert (inner["event_id"], inner["job_attempt"], inner["resource"]) == (
        "E7", 3, "attachmentActions")
    assert again["resource"] == "messages" and "job_attempt" not in again
    assert "event_id" not in after and "resource" not in after


def test_bind_is_undone_when_the_block_raises(capture: Capture) -> None:
    """An exception inside the block does not leave the context behind."""
    with pytest.raises(RuntimeError), bind(event_id="E-fail"):
        raise RuntimeError("boom")
    capture.logger.info("next")
    assert "event_id" not in capture.only()


def test_an_extra_field_wins_over_the_bound_context(capture: Capture) -> None:
    """The more specific value, given on the line itself, is the one written."""
    with bind(room_id="R-context"):
        capture.logger.info("posted", extra={"room_id": "R-line"})
    assert capture.only()["room_id"] == "R-line"


def test_an_exception_is_written_as_an_error_field(capture: Capture) -> None:
    """logger.exception puts the traceback in "error", still one JSON line."""
    try:
        raise ValueError("bad input")
    except ValueError:
        capture.logger.exception("failed")
    entry = capture.only()
    assert entry["level"] == "error"
    assert "Traceback" in entry["error"] and "ValueError: bad input" in entry["error"]


WHERE = {
    "message": lambda log, s: log.info(f"calling with {s}"),
    "args": lambda log, s: log.info("header %s", f"Bearer {s}"),
    "extra": lambda log, s: log.info("sent", extra={"authorization": f"Bearer {s}"}),
    "nested extra": lambda log, s: log.info("sent", extra={"request": {"headers": [s]}}),
    "exception": lambda log, s: _log_exception(log, s),
}


def _log_exception(logger: logging.Logger, secret: str) -> None:
    try:
        raise RuntimeError(f"token {secret} rejected")
    except RuntimeError:
        logger.exception("upstream failed")


def _log_in_context(logger: logging.Logger, secret: str) -> None:
    with bind(token=secret):
        logger.info("context")


WHERE["bound context"] = _log_in_context


@pytest.mark.parametrize("secret", [TOKEN, HOOK_SECRET])
@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
def test_configured_secrets_are_masked_wherever_they_appear(
    capture: Capture, where: Any, secret: str
) -> None:
    """Message, arguments, extra fields, nested values, tracebacks, context: all masked."""
    where(capture.logger, secret)
    assert secret not in capture.text
    assert "***" in capture.text
    capture.entries()  # still valid JSON after masking


@pytest.mark.parametrize("secret", ['quote"in-secret', "back\\slash-secret", "tab\tsecret"])
def test_secrets_with_characters_json_escapes_are_masked_too(secret: str) -> None:
    """A quote, backslash or tab in a secret is escaped in JSON; the escaped form is masked."""
    capture = Capture((secret,))
    capture.logger.info("using %s", secret, extra={"value": secret})
    assert json.dumps(secret)[1:-1] not in capture.text
    entry = capture.only()
    assert (entry["message"], entry["value"]) == ("using ***", "***")


def test_a_secret_containing_another_is_masked_whole() -> None:
    """No tail of a longer secret is left when a shorter one is part of it."""
    capture = Capture(("abc123", "abc123-and-more-secret"))
    capture.logger.info("abc123-and-more-secret")
    assert capture.only()["message"] == "***"


@pytest.mark.parametrize("short", ["x", "e", "bot", "info", "1234567"])
def test_a_short_secret_never_mangles_names_or_common_words(short: str) -> None:
    """A secret too short to mask without garbling the line (WEBHOOK_SECRET=x once turned
    "Webex" into "Webe***" and the logger into "***.upstream.retry") leaves the text alone,
    and the field names, level, logger and time are never masked, whatever the secrets."""
    capture = Capture((short, "time", "level", "message", "service"))
    capture.logger.name = "bot.upstream.retry"
    capture.logger.info("retrying after a failed call to Webex 1234567", extra={
        "service": "Webex", "host": "webexapis.com", "status": None})
    entry = capture.only()
    assert entry["logger"] == "bot.upstream.retry" and entry["level"] == "info"
    assert set(entry) == {"time", "level", "logger", "message", "service", "host", "status"}
    assert entry["message"] == "retrying after a failed call to Webex 1234567"
    assert (entry["service"], entry["host"]) == ("Webex", "webexapis.com")
    assert "***" not in capture.text


def test_a_short_password_is_still_masked_inside_a_url() -> None:
    """Where a URL carries it, even a short password is masked: there it cannot be a word."""
    capture = Capture(("pw",))
    capture.logger.info("connecting", extra={"url": "redis://:pw@cache:6379/0"})
    assert capture.only()["url"] == "redis://:***@cache:6379/0"


def test_text_that_is_not_a_secret_is_left_alone() -> None:
    """Masking changes only the secrets; empty secrets are ignored."""
    quiet = Capture(("", TOKEN))
    quiet.logger.info("nothing to hide here", extra={"n": 1})
    assert quiet.only()["message"] == "nothing to hide here"


@pytest.fixture
def root_restored() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield root
    root.handlers[:], level = saved
    root.setLevel(level)


def test_configure_sends_masked_json_lines_to_stderr(
    root_restored: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    """configure() installs one JSON handler at the level asked, masking the given secrets."""
    logs.configure("warning", secrets=[TOKEN])
    assert len(root_restored.handlers) == 1
    assert root_restored.level == logging.WARNING
    logging.getLogger("bot.test").info("not shown")
    logging.getLogger("bot.test").warning("token is %s", TOKEN, extra={"event_id": "E9"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "token is ***" and entry["event_id"] == "E9"
    assert logging.getLogger("urllib3").level == logging.WARNING
