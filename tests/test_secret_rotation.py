"""Rotating the webhook secret as the README says, end to end against the sandbox's Webex: the
bot accepts both secrets while ``webhooks sync`` moves the webhooks to the new one, then only
the new one."""

from __future__ import annotations

from pathlib import Path

from bot.devtools.in_process import serve_locally
from bot.devtools.sandbox import Sandbox
from bot.secret import Secret
from bot.upstream.webex import WebexClient
from bot.upstream.webhook_sync import sync, webhook_name
from tests.conftest import FAST_RETRY, sandbox_settings

OLD = Secret("the-secret-of-last-year-0a91")
NEW = Secret("the-secret-of-this-year-7c2e")


def deliver(sandbox: Sandbox, webex: WebexClient, event_id: str) -> int:
    """Have the sandbox's Webex deliver one event on the bot's memberships webhook."""
    hook = next(h for h in webex.webhooks() if h.name == webhook_name("memberships"))
    return sandbox.deliver(hook.id, {"id": event_id, "roomId": "ROOM-1"}).status


def test_a_rotation_loses_no_delivery_and_ends_with_the_old_secret_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url, retry=FAST_RETRY)
    rotating = sandbox_settings(sandbox, tmp_path, webhook_secret=NEW,
                                previous_webhook_secret=OLD)
    with serve_locally(rotating) as bot:
        sync(webex, bot.webhook_url, OLD)  # as deployed before the rotation
        assert deliver(sandbox, webex, "MEMBERSHIP-OLD") == 200
        sync(webex, bot.webhook_url, NEW)
        assert deliver(sandbox, webex, "MEMBERSHIP-NEW") == 200
    with serve_locally(sandbox_settings(sandbox, tmp_path, webhook_secret=NEW)) as bot:
        sync(webex, bot.webhook_url, NEW)
        assert deliver(sandbox, webex, "MEMBERSHIP-AFTER") == 200
        sync(webex, bot.webhook_url, OLD)  # a webhook the rotation missed
        assert deliver(sandbox, webex, "MEMBERSHIP-MISSED") == 401
