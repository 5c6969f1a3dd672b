"""Turning a subject people type into a ``jwt.sub`` nobody else will share by accident.

Everyone with the same ``sub`` lands in the same meeting space, and people type the same subjects
("Consultation") all day. The ``sub`` keeps a readable slug of the subject and adds a digest of an
idempotency key: the same key (say, a card submit's id) always gives the same ``sub``, so a retried
request lands in the same space, while two different requests never collide.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

SLUG_LENGTH = 48
DIGEST_LENGTH = 16


def unique_sub(subject: str, key: str | None = None) -> str:
    """``Patient-follow-up-<digest>``: readable, unique per key, deterministic for a given key."""
    key = key if key is not None else secrets.token_hex(16)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]
    return f"{_slug(subject)}-{digest}"


def _slug(subject: str) -> str:
    """Letters, digits and hyphens only (what the broker is known to accept), accents folded."""
    ascii_text = unicodedata.normalize("NFKD", subject).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:SLUG_LENGTH].rstrip("-")
    return slug or "meeting"
