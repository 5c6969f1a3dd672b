"""Webhook deliveries: checking the signature and reading the envelope into an :class:`Event`.

Webex signs the raw body with HMAC-SHA1 and the webhook's secret (``X-Spark-Signature``). The
check runs over the exact bytes received, before any JSON parsing, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from bot.events import Event

SIGNATURE_HEADER = "X-Spark-Signature"
# Webex envelopes nest three levels deep. Far deeper JSON still parses, but copying or storing it
# recurses once per level and would fail with RecursionError (a 500) instead of a 400.
MAX_DEPTH = 32


class MalformedEvent(ValueError):
    """The body is not a Webex webhook envelope; the message says what is missing."""


def sign(body: bytes, secret: str) -> str:
    """The signature Webex sends for ``body``."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def signature_matches(body: bytes, signature: str | None, secret: str) -> bool:
    """True only when ``signature`` is the HMAC-SHA1 of these exact bytes (constant time)."""
    if not signature:
        return False
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str, and a forged header may
    # carry any latin-1 character.
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(body, secret).encode("ascii"), given)


def parse_envelope(body: bytes) -> Event:
    """Read a webhook body; MalformedEvent when it is not JSON or lacks what every delivery has."""
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedEvent("the body is not JSON") from None
    if not isinstance(envelope, dict):
        raise MalformedEvent("the body is not a JSON object")
    if _deeper_than(envelope, MAX_DEPTH):
        raise MalformedEvent(f"the body nests deeper than {MAX_DEPTH} levels")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("'data' must be an object")
    texts = {name: envelope.get(name) for name in ("resource", "event")}
    texts["data.id"] = data.get("id")
    for name, value in texts.items():
        if not isinstance(value, str) or not value or len(value) > 512 or not _is_utf8(value):
            raise MalformedEvent(f"'{name}' must be a non-empty string")
    optional = {name: envelope.get(name) for name in ("id", "actorId", "orgId")}
    if any(value is not None and not (isinstance(value, str) and _is_utf8(value))
           for value in optional.values()):
        raise MalformedEvent("'id', 'actorId' and 'orgId' must be strings")
    return Event(
        resource=str(texts["resource"]),
        event=str(texts["event"]),
        data_id=str(texts["data.id"]),
        webhook_id=optional["id"] or "",
        actor_id=optional["actorId"],
        org_id=optional["orgId"],
        data=data,
    )


def _is_utf8(text: str) -> bool:
    """False for a lone surrogate (JSON allows "\\ud800"), which no store can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _deeper_than(value: object, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (checked without recursion)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False
