"""Creating and repairing exactly the bot's own webhooks, and nobody else's.

The bot needs three webhooks (messages, card submits, memberships), all pointing at its URL and
signed with its secret. ``sync`` makes that true: it creates what is missing, updates the target,
secret and status of what exists (re-enabling a webhook Webex disabled), deletes only its own
duplicates, and never touches a webhook whose name is not the bot's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.events import HANDLED
from bot.secret import Secret
from bot.upstream.webex import WebexClient, Webhook

log = logging.getLogger(__name__)

NAME_PREFIX = "instant-connect-bot"


def webhook_name(resource: str) -> str:
    """The name that marks a webhook as this bot's."""
    return f"{NAME_PREFIX} {resource}"


def is_ours(name: str) -> bool:
    """Whether a webhook name is one this bot gives (not merely one starting with its letters)."""
    return name == NAME_PREFIX or name.startswith(NAME_PREFIX + " ")


@dataclass(frozen=True)
class SyncReport:
    """What ``sync`` changed, one line per webhook."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    untouched_foreign: int = 0

    def lines(self) -> list[str]:
        """A summary a person can read after a deploy."""
        report = [f"created  {name}" for name in self.created]
        report += [f"updated  {name}" for name in self.updated]
        report += [f"deleted  {name} (duplicate)" for name in self.deleted]
        report.append(f"left alone {self.untouched_foreign} webhook(s) that are not the bot's")
        return report


def sync(webex: WebexClient, target_url: str, secret: Secret) -> SyncReport:
    """Make the bot's webhooks exactly the wanted ones, pointing at ``target_url``."""
    existing = list(webex.webhooks())
    ours = [hook for hook in existing if is_ours(hook.name)]
    created, updated, deleted = [], [], []
    kept: set[str] = set()
    for resource, event in HANDLED:
        name = webhook_name(resource)
        matches = sorted(
            # A filter cannot be removed by an update, so a filtered one is replaced instead.
            (h for h in ours if h.name == name and (h.resource, h.event) == (resource, event)
             and not h.filter),
            key=lambda h: (h.status != "active", h.target_url != target_url),
        )
        kept.update(h.id for h in matches)
        if not matches:
            webex.create_webhook(name=name, target_url=target_url, resource=resource,
                                 event=event, secret=secret)
            created.append(name)
        else:
            webex.update_webhook(matches[0], target_url=target_url, secret=secret)
            updated.append(name)
        for duplicate in matches[1:]:
            webex.delete_webhook(duplicate.id)
            deleted.append(name)
    # Its own webhooks that are none of the wanted ones (an old name, a wrong resource or event,
    # a filter).
    stray = [h for h in ours if h.id not in kept]
    for hook in stray:
        webex.delete_webhook(hook.id)
        deleted.append(hook.name)
    report = SyncReport(tuple(created), tuple(updated), tuple(deleted),
                        untouched_foreign=len(existing) - len(ours))
    log.info("webhooks synchronised", extra={
        "webhooks_created": len(created), "webhooks_updated": len(updated),
        "webhooks_deleted": len(deleted)})
    return report


def describe(hook: Webhook) -> str:
    """One line per webhook for ``webhooks list``."""
    owner = "bot" if is_ours(hook.name) else "other"
    kind = f"{hook.resource}/{hook.event}"
    return f"{hook.status:<8} {owner:<5} {kind:<26} {hook.name!r} -> {hook.target_url}"
