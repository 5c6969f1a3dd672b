"""Registered webhooks: create, list by owner with a cursor, update, delete, and who gets what.

The secret is kept beside the public record and never returned. Only webhooks owned by the
bot's token are delivered to: other owners stand for other apps, which are in no sandbox space.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from .ids import IdFactory, now_iso
from .journal import Journal
from .responses import ApiError

RESOURCES = {"messages", "attachmentActions", "memberships", "rooms"}
EVENTS = {"created", "updated", "deleted", "all"}
FILTER_KEYS = {"roomId", "roomType", "personId", "personEmail", "mentionedPeople", "messageId"}
NO_WEBHOOK = "Could not find a webhook with provided ID."


@dataclass
class Hook:
    """One webhook: its public record, its secret and the token that owns it."""

    record: dict[str, Any]
    secret: str | None
    owner_token: str
    seq: int

    @property
    def id(self) -> str:
        """The webhook id."""
        return str(self.record["id"])


def parse_filter(text: str | None) -> dict[str, str]:
    """Split a webhook filter ("roomId=..&mentionedPeople=me") into keys, refusing unknown ones."""
    if not text:
        return {}
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    unknown = sorted({k for k, _ in pairs} - FILTER_KEYS)
    if unknown or not pairs:
        raise ApiError(400, f"Unsupported webhook filter: {text}")
    return dict(pairs)


def filter_matches(text: str | None, data: dict[str, Any], me: str) -> bool:
    """Check event data against a filter; "me" stands for the webhook's owner."""
    for key, wanted in parse_filter(text).items():
        values = {me if v == "me" else v for v in wanted.split(",")}
        actual = data.get(key)
        have = set(actual) if isinstance(actual, list) else {actual}
        if not values & have:
            return False
    return True


def _cursor(seq: int) -> str:
    """Make an opaque page cursor from a sequence number."""
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    """Read a page cursor back, or 400 when it is not one of ours."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = text.partition(":")
        if prefix != "after":
            raise ValueError(text)
        return int(seq)
    except ValueError:
        raise ApiError(400, "Invalid cursor.") from None


class WebhookStore:
    """Own the registered webhooks."""

    def __init__(self, journal: Journal, ids: IdFactory, *, org_id: str, app_id: str) -> None:
        self._journal = journal
        self._lock = journal.lock
        self._ids = ids
        self._org_id = org_id
        self._app_id = app_id
        self._hooks: dict[str, Hook] = {}
        self._owners: dict[str, str] = {}
        self._seq = 0

    def bind_owner(self, token: str, person_id: str) -> None:
        """Say which person a token belongs to (the bot's token is bound at start)."""
        with self._lock:
            self._owners[token] = person_id

    def create(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Register a webhook from a REST-style body owned by the token."""
        fields = {k: body.get(k) for k in ("name", "targetUrl", "resource", "event")}
        for key, value in fields.items():
            if not isinstance(value, str) or not value:
                raise ApiError(400, f"{key} is required and must be a non-empty string.")
        if fields["resource"] not in RESOURCES:
            raise ApiError(400, f"Unsupported resource: {fields['resource']}")
        if fields["event"] not in EVENTS:
            raise ApiError(400, f"Unsupported event: {fields['event']}")
        for key in ("filter", "secret"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise ApiError(400, f"{key} must be a string.")
        parse_filter(body.get("filter"))
        with self._lock:
            owner = self._owners.setdefault(token, self._ids.new("PEOPLE"))
            record = {"id": self._ids.new("WEBHOOK"), **fields}
            if body.get("filter"):
                record["filter"] = body["filter"]
            record.update(
                orgId=self._org_id,
                createdBy=owner,
                appId=self._app_id,
                ownedBy="creator",
                status="active",
                created=now_iso(),
            )
            self._seq += 1
            hook = Hook(record, body.get("secret") or None, token, self._seq)
            self._hooks[hook.id] = hook
            self._journal.changed()
            return copy.deepcopy(record)

    def _owned(self, token: str, webhook_id: str) -> Hook:
        """Find a webhook owned by the token, or 404."""
        hook = self._hooks.get(webhook_id)
        if hook is None or hook.owner_token != token:
            raise ApiError(404, NO_WEBHOOK)
        return hook

    def get(self, token: str, webhook_id: str) -> dict[str, Any]:
        """Return one of the token's webhooks."""
        with self._lock:
            return copy.deepcopy(self._owned(token, webhook_id).record)

    def page(self, token: str, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
        """Return up to limit of the token's webhooks after the cursor, and the next cursor."""
        after = _after(cursor)
        with self._lock:
            hooks = [h for h in self._hooks.values() if h.owner_token == token and h.seq > after]
            page = hooks[:limit]
            more = len(hooks) > limit
            return [copy.deepcopy(h.record) for h in page], _cursor(page[-1].seq) if more else None

    def update(self, token: str, webhook_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change name, targetUrl, secret, or re-activate (Webex cannot deactivate by PUT)."""
        status = body.get("status")
        if status is not None and status != "active":
            raise ApiError(400, 'status can only be set to "active".')
        for key in ("name", "targetUrl"):
            if key in body and (not isinstance(body[key], str) or not body[key]):
                raise ApiError(400, f"{key} must be a non-empty string.")
        with self._lock:
            hook = self._owned(token, webhook_id)
            for key in ("name", "targetUrl", "status"):
                if body.get(key) is not None:
                    hook.record[key] = body[key]
            if "secret" in body:
                hook.secret = body["secret"] or None
            self._journal.changed()
            return copy.deepcopy(hook.record)

    def delete(self, token: str, webhook_id: str) -> None:
        """Remove one of the token's webhooks."""
        with self._lock:
            self._owned(token, webhook_id)
            del self._hooks[webhook_id]
            self._journal.changed()

    def disable(self, webhook_id: str) -> None:
        """Mark a webhook inactive, as Webex does after failed deliveries."""
        with self._lock:
            if webhook_id not in self._hooks:
                raise ApiError(404, NO_WEBHOOK)
            self._hooks[webhook_id].record["status"] = "inactive"
            self._journal.changed()

    def hook(self, webhook_id: str) -> Hook:
        """A copy of a webhook with its secret, for deliveries."""
        with self._lock:
            if webhook_id not in self._hooks:
                raise ApiError(404, NO_WEBHOOK)
            return copy.deepcopy(self._hooks[webhook_id])

    def targets(self, token: str, resource: str, event: str) -> list[Hook]:
        """The token's active webhooks for this resource and event (filters not applied)."""
        with self._lock:
            return [
                copy.deepcopy(h)
                for h in self._hooks.values()
                if h.owner_token == token
                and h.record["status"] == "active"
                and h.record["resource"] == resource
                and h.record["event"] in (event, "all")
            ]
