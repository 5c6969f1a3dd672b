"""Who may use the bot, applied alike to messages and to card submits.

With nothing configured only people of the bot's own organisation are let in: Instant Connect
links are made with the organisation's licence, so strangers who find the bot should not mint them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.conversation.commands import person_uuid
from bot.upstream.webex import Person


@dataclass(frozen=True)
class AccessPolicy:
    """Who may use the bot. With every list empty, only people of the bot's own organisation."""

    allowed_domains: frozenset[str] = frozenset()
    allowed_people: frozenset[str] = frozenset()
    allowed_org_ids: frozenset[str] = frozenset()
    allow_everyone: bool = False

    @property
    def is_open_to_own_org_only(self) -> bool:
        """True when nothing was configured, so the safe default applies."""
        return not (
            self.allow_everyone
            or self.allowed_domains
            or self.allowed_people
            or self.allowed_org_ids
        )


class Gatekeeper:
    """Decides whether one person may use the bot."""

    def __init__(self, policy: AccessPolicy, bot_org_id: Callable[[], str | None]) -> None:
        self._policy = policy
        self._bot_org_id = bot_org_id

    def allows(self, person: Person) -> bool:
        """True when the person matches any configured rule (or, by default, the bot's org)."""
        policy = self._policy
        if person.type == "bot":
            return False
        if policy.allow_everyone:
            return True
        if policy.is_open_to_own_org_only:
            return person.org_id is not None and person.org_id == self._bot_org_id()
        emails = {email.lower() for email in person.emails}
        domains = {email.rpartition("@")[2] for email in emails}
        return bool(
            emails & policy.allowed_people
            or {person.id.lower(), person_uuid(person.id).lower()} & policy.allowed_people
            or domains & policy.allowed_domains
            or (person.org_id is not None and person.org_id in policy.allowed_org_ids)
        )
