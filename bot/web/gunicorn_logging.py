"""gunicorn's own lines (its master's and its web processes': booting, listening, a worker
that timed out or was killed) in the bot's JSON format, so that every line ``serve`` writes can
be shipped and parsed alike. Usage::

    gunicorn --logger-class bot.web.gunicorn_logging.JsonLogger ...

gunicorn keeps its own handlers (its error log and, when asked for, its access log); only their
format changes, to :class:`bot.logs.JsonFormatter` with the bot's secrets masked.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from bot.logs import JsonFormatter


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, writing JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = JsonFormatter(_secrets())
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(formatter)


def _secrets() -> list[str]:
    """The bot's secrets, to mask; none when the environment is not a bot's (the benchmark's
    bare floor app). Imported here: the master need not carry the settings otherwise."""
    from bot.settings import Settings, SettingsError

    try:
        return Settings.from_env().secret_values()
    except SettingsError:
        return []
