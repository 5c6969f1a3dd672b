"""Helpers for the sandbox tests: an authorized HTTP session and a webhook receiver."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import requests
from werkzeug.wrappers import Request, Response

from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.server import BackgroundServer


def bot_session(sb: Sandbox) -> requests.Session:
    """A requests session that sends the bot's bearer token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sb.bot_token}"
    return session


@dataclass(frozen=True)
class Received:
    """One webhook POST as the bot's server would see it."""

    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP endpoint that stands in for the bot's webhook route and keeps what it got."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = BackgroundServer(self._app)

    def _app(self, environ: dict, start_response: object) -> object:
        """Keep the request, answer with the configured status."""
        request = Request(environ)
        with self._lock:
            self.received.append(Received(dict(request.headers.items()), request.get_data()))
        return Response("ok", self.status)(environ, start_response)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        """Where webhooks should be sent."""
        return self._server.url + "/webex/events"

    def __enter__(self) -> Receiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
