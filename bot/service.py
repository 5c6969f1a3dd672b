"""One bot process, assembled: clients, store, conversation, workers and the webhook intake.

Usage::

    service = BotService(settings)          # tests pass clients pointed at the sandbox
    service.start()                          # worker threads
    reply = service.intake.receive(body, headers)
"""

from __future__ import annotations

import threading
import time

from bot.conversation import Conversation
from bot.errors import UpstreamError
from bot.instant_connect import InstantConnectClient
from bot.intake import Intake
from bot.settings import Settings
from bot.storage import Store, StoreUnavailable, open_store
from bot.webex import WebexClient
from bot.worker import Worker

READINESS_TTL = 30.0


class BotService:
    """Owns everything one process of the bot runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        webex: WebexClient | None = None,
        meetings: InstantConnectClient | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings.storage_url)
        self.webex = webex or WebexClient(
            settings.bot_token, settings.webex_base_url,
            timeout=settings.webex_timeout, retry=settings.retry,
        )
        self.meetings = meetings or InstantConnectClient(
            settings.bot_token, settings.instant_connect
        )
        self.conversation = Conversation(settings, self.webex, self.meetings, self.store)
        self.worker = Worker(
            self.store, self.conversation.process,
            threads=settings.worker_threads, lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.max_attempts,
        )
        self.intake = Intake(settings, self.store, on_accepted=self.worker.notify)
        self._token_checked_at = float("-inf")
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers."""
        self.worker.start()

    def stop(self) -> None:
        """Let the workers finish their current job and stop."""
        self.worker.stop()

    def readiness(self) -> list[str]:
        """What keeps the bot from working right now; empty when it is ready."""
        problems = []
        try:
            self.store.ping()
        except StoreUnavailable:
            problems.append("storage unreachable")
        with self._lock:
            if time.monotonic() - self._token_checked_at > READINESS_TTL:
                try:
                    self.webex.check_token()
                    self._token_checked_at = time.monotonic()
                except UpstreamError as error:
                    problems.append(error.describe())
        return problems
