"""Structured logs: one JSON object per line, carrying event and tracking ids, never a secret.

Code logs with ``extra={...}`` fields; this module turns them into JSON. As a second line of
defence, every secret handed to :func:`configure` is masked wherever it would appear.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
#: Secrets shorter than this are masked only inside URLs (see :class:`Masker`).
MIN_MASKED_LENGTH = 8
_context: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("log_context")


@contextlib.contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Add ``fields`` (an event id, say) to every log line written inside the block."""
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


@contextlib.contextmanager
def silenced(name: str) -> Iterator[None]:
    """Drop one logger's records inside the block: a probe's expected failures are not news."""
    logger = logging.getLogger(name)
    was, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = was


class JsonFormatter(logging.Formatter):
    """Formats a record and its extra fields as one JSON line, with secrets masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._masker = Masker(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields: dict[str, object] = {"message": record.getMessage()}
        fields.update(_context.get({}))
        fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        # Only what a line carries is masked: the names of its fields, its time, level and
        # logger are the code's own and never a secret.
        for name, value in fields.items():
            entry[name] = self._masker.masked(value)
        return json.dumps(entry, ensure_ascii=False)


def iso_time(created: float) -> str:
    """A record's time as ISO 8601 in UTC to the millisecond, as log shippers read it."""
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class Masker:
    """Replaces secrets by ``***`` in the values a log line carries.

    A secret of ``MIN_MASKED_LENGTH`` characters or more is masked wherever it appears. A
    shorter one cannot be: replacing every "x" would garble every line and, by the gaps, give
    the secret away. It is masked only where a URL carries it as a password (``:pw@``); the
    settings refuse such short webhook secrets in the first place.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        given = {secret for secret in secrets if secret}
        # Longest first, so a secret containing another is masked whole.
        self._long = sorted((s for s in given if len(s) >= MIN_MASKED_LENGTH),
                            key=len, reverse=True)
        self._short = sorted(given.difference(self._long), key=len, reverse=True)

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        for secret in self._long:
            text = text.replace(secret, "***")
        for secret in self._short:
            text = text.replace(f":{secret}@", ":***@")
        return text

    def masked(self, value: object) -> object:
        """``value`` with its text masked, nested dicts and lists included; what JSON cannot
        hold is written as its text."""
        if isinstance(value, str):
            return self.mask(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {str(key): self.masked(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.masked(item) for item in value]
        return self.mask(str(value))


def configure(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send the bot's logs to stderr as JSON lines; call once per process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
