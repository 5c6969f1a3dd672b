"""What the conversation reads from the settings, apart from the router that acts on it, so
reading the settings does not load the whole conversation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.conversation.access import AccessPolicy
from bot.limits import DEFAULT_VALID_FOR
from cards.inputs import DEFAULT_GUEST_LANGUAGE, DEFAULT_REMIND_BEFORE, CatalogDevice


@dataclass(frozen=True)
class ConversationConfig:
    """What the conversation reads: who may use the bot, the devices, defaults, a rate limit,
    who may act on a meeting."""

    access: AccessPolicy = field(default_factory=AccessPolicy)
    device_catalog: Sequence[CatalogDevice] = ()
    default_timezone: str = "UTC"
    default_valid_for: str = DEFAULT_VALID_FOR
    meetings_per_person: int = 30
    meetings_window: timedelta = timedelta(hours=1)
    phone_region: str | None = None
    org_name: str = ""  # ORG_NAME: who guests are told invites them, beside the person
    meeting_actions: str = "space"  # MEETING_ACTIONS: "maker" keeps the buttons to the maker
    guest_language: str = DEFAULT_GUEST_LANGUAGE  # GUEST_LANGUAGE: what guests read unless chosen
    remind_before: str = DEFAULT_REMIND_BEFORE  # REMIND_BEFORE: guests' reminder unless chosen
