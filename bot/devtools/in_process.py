"""The bot served in-process on a free local port, for the offline demo and the tests.

Usage::

    with serve_locally(settings) as local:
        print(local.webhook_url)       # http://127.0.0.1:PORT/webhooks

    with sandboxed_settings() as settings:   # ``links --sandbox``: the environment's settings,
        ...                                  # with a running sandbox's token and broker
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from bot.devtools.sandbox import Sandbox
from bot.secret import Secret
from bot.service import BotService
from bot.settings import Settings
from bot.upstream.mail import MailConfig
from bot.upstream.sms import TwilioConfig
from bot.web.app import create_app


@dataclass(frozen=True)
class LocalBot:
    """A running bot: its service (store, workers) and the URL its webhooks must target."""

    service: BotService
    webhook_url: str


class _QuietHandler(WSGIRequestHandler):
    """No access log on the terminal: the bot's own structured logs say what matters."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextlib.contextmanager
def serve_locally(settings: Settings) -> Iterator[LocalBot]:
    """Serve the bot on 127.0.0.1 with an OS-chosen port until the block ends."""
    service = BotService(settings)
    server = make_server(
        "127.0.0.1", 0, create_app(service), threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="local-bot", daemon=True)
    thread.start()
    try:
        yield LocalBot(service, f"http://127.0.0.1:{server.server_port}{settings.webhook_path}")
    finally:
        server.shutdown()
        service.stop()


@contextlib.contextmanager
def sandboxed_settings() -> Iterator[Settings]:
    """The environment's settings (time zone, log level) with a sandbox's token and broker."""
    with Sandbox(seed=int(os.environ.get("SANDBOX_SEED", "0"))) as box:
        base = Settings.from_env({**os.environ, "WEBEX_BOT_TOKEN": box.bot_token})
        yield replace(base, instant_connect=replace(base.instant_connect,
                                                    broker_url=box.broker_url))


def sandbox_guest_channels(box: Sandbox, **retry: Any) -> dict[str, Any]:
    """Settings fields that send guests' email and SMS to the sandbox's SMTP relay and Twilio;
    ``retry`` (``retry=RetryPolicy(...)``) makes the clients' retries quick for tests."""
    return {
        "mail": MailConfig(box.smtp_url, mail_from="instant-connect@clinic.example.com",
                           ca_file=box.smtp_ca_file, timeout=5.0, **retry),
        "sms": TwilioConfig(box.twilio_account_sid, Secret(box.twilio_auth_token),
                            from_number=box.twilio_from, api_url=box.twilio_api_url,
                            timeout=5.0, **retry),
        "phone_region": "FR",
    }
