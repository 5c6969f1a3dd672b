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

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
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
        # Longest first, so a secret containing another is masked whole; each also in the form
        # json.dumps writes it (a quote or backslash in a secret is escaped there).
        self._secrets = sorted(
            {form for secret in secrets if secret
             for form in (secret, json.dumps(secret, ensure_ascii=False)[1:-1])},
            key=len, reverse=True,
        )

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context.get({}))
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(entry, default=str, ensure_ascii=False))

    def mask(self, text: str) -> str:
        """Replace every known secret by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def configure(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send the bot's logs to stderr as JSON lines; call once per process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
