"""Seeded identifiers and timestamps, so one seed always yields the same sandbox world."""

from __future__ import annotations

import base64
import random
import string
import uuid
from datetime import UTC, datetime

SHORT_ALPHABET = string.ascii_letters + string.digits


def seeded(seed: int, purpose: str) -> random.Random:
    """Give each purpose its own random stream, so drawing for one never shifts another."""
    return random.Random(f"{purpose}:{seed}")


def webex_id(kind: str, raw_uuid: str) -> str:
    """Spell an id the way Webex does: unpadded base64 of ciscospark://us/KIND/uuid."""
    text = f"ciscospark://us/{kind}/{raw_uuid}"
    return base64.b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def raw_uuid(any_id: str) -> str:
    """Return the UUID inside a Webex id (the form some clients put in mentions)."""
    padded = any_id + "=" * (-len(any_id) % 4)
    return base64.b64decode(padded).decode("ascii").rsplit("/", 1)[-1]


def now_iso() -> str:
    """Stamp a record the way Webex does: UTC, milliseconds, a trailing Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class IdFactory:
    """Mint Webex-looking ids from a seeded stream (callers hold the sandbox lock)."""

    def __init__(self, seed: int) -> None:
        self._rng = seeded(seed, "ids")

    def uuid(self) -> str:
        """Draw a version-4 UUID from the seeded stream."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def new(self, kind: str) -> str:
        """Mint a fresh Webex id of the given kind (PEOPLE, ROOM, MESSAGE, ...)."""
        return webex_id(kind, self.uuid())


def short_code(rng: random.Random, length: int = 7) -> str:
    """Draw a short-URL key like the broker's ("Kuyqdx3")."""
    return "".join(rng.choice(SHORT_ALPHABET) for _ in range(length))


def tracking_id(rng: random.Random) -> str:
    """Draw a Webex-style tracking id ("ROUTER_62A895B5-BFF4-...")."""
    return "ROUTER_" + str(uuid.UUID(int=rng.getrandbits(128))).upper()
