"""Seeded identifiers and timestamps, so one seed always yields the same sandbox world."""

from __future__ import annotations

import base64
import random
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

SHORT_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Cluster:
    """A Webex data centre a space can be hosted in: its id in the service catalog, and the
    host of its conversation service (what a websocket activity's ``target.url`` names)."""

    team: str
    conversation_host: str

    @property
    def in_ids(self) -> str:
        """How REST ids spell it: "us" for the original US cluster, else the team urn."""
        return "us" if self.team == US_TEAM else self.team

    @property
    def conversation_url(self) -> str:
        """The conversation service's base URL (a reserved ``.invalid`` host: never called)."""
        return f"https://{self.conversation_host}/conversation/api/v1"


US_TEAM = "urn:TEAM:us-east-2_a"
CLUSTERS = {
    "us": Cluster(US_TEAM, "conv-a.wbx2.sandbox.invalid"),
    "eu": Cluster("urn:TEAM:eu-central-1_k", "conv-k.wbx2.sandbox.invalid"),
}
"""The sandbox's clusters by short name; "us" is where the bot and unnamed organisations live."""
UNCLUSTERED = ("PEOPLE", "ORGANIZATION")
"""Kinds whose ids always say "us", wherever the organisation is hosted."""


def seeded(seed: int, purpose: str) -> random.Random:
    """Give each purpose its own random stream, so drawing for one never shifts another."""
    return random.Random(f"{purpose}:{seed}")


def webex_id(kind: str, raw_uuid: str, cluster: str = "us") -> str:
    """Spell an id the way Webex does: unpadded base64 of ciscospark://CLUSTER/KIND/uuid, the
    cluster hosting the space for rooms, messages, memberships and card actions, "us" for
    people and organisations."""
    where = "us" if kind in UNCLUSTERED else CLUSTERS[cluster].in_ids
    text = f"ciscospark://{where}/{kind}/{raw_uuid}"
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

    def new(self, kind: str, cluster: str = "us") -> str:
        """Mint a fresh Webex id of the given kind (PEOPLE, ROOM, MESSAGE, ...)."""
        return webex_id(kind, self.uuid(), cluster)


def short_code(rng: random.Random, length: int = 7) -> str:
    """Draw a short-URL key like the broker's ("Kuyqdx3")."""
    return "".join(rng.choice(SHORT_ALPHABET) for _ in range(length))


def tracking_id(rng: random.Random) -> str:
    """Draw a Webex-style tracking id ("ROUTER_62A895B5-BFF4-...")."""
    return "ROUTER_" + str(uuid.UUID(int=rng.getrandbits(128))).upper()
