"""The broker's answer turned into meeting links people can click.

Long URLs are a configured base plus the cipher; short URLs are the broker's ``baseUrl`` plus
``short``. A cipher is a bearer credential for a meeting: reprs never show one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.errors import MalformedResponse
from bot.upstream.instant_connect.config import InstantConnectConfig
from bot.upstream.instant_connect.request import MeetingRequest

SERVICE = "Instant Connect"


@dataclass(frozen=True)
class Link:
    """One person's way into the meeting."""

    role: str  # "host" or "guest"
    number: int
    url: str = field(repr=False)
    short_url: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``Host 1``, ``Guest 3``: how the link is introduced to people."""
        return f"{self.role.capitalize()} {self.number}"

    @property
    def best_url(self) -> str:
        """The short URL when there is one, as it is easier to share."""
        return self.short_url or self.url


@dataclass(frozen=True)
class MeetingLinks:
    """Everything one broker call produced, with the window the links are valid in."""

    sub: str
    nbf: int
    exp: int
    hosts: tuple[Link, ...]
    guests: tuple[Link, ...]

    @property
    def all(self) -> tuple[Link, ...]:
        """Hosts first, then guests."""
        return self.hosts + self.guests


def build_links(
    body: Any, request: MeetingRequest, config: InstantConnectConfig, now: float
) -> MeetingLinks:
    """Check the answer against what was asked for and build the URLs; MalformedResponse if off."""
    if not isinstance(body, dict):
        raise MalformedResponse(SERVICE, status=200, detail="the answer is not a JSON object")
    short = bool(request.provide_short_urls)
    base_url = body.get("baseUrl")
    if short and not (isinstance(base_url, str) and base_url.startswith(("http://", "https://"))):
        raise MalformedResponse(SERVICE, status=200, detail="short links asked for, no baseUrl")
    vertical = request.vertical_type or "gen"
    groups = []
    for role, wanted, template in (
        ("host", request.hosts, config.host_url_base),
        ("guest", request.guests, config.guest_url_base),
    ):
        entries = body.get(role, [] if wanted == 0 else None)
        if not isinstance(entries, list) or len(entries) != wanted:
            raise MalformedResponse(
                SERVICE, status=200, detail=f"expected {wanted} {role} link(s) in the answer"
            )
        base = template.replace("{vertical}", vertical)
        groups.append(
            tuple(
                _link(role, number, entry, base, base_url if short else None)
                for number, entry in enumerate(entries, start=1)
            )
        )
    nbf, exp = request.window(now)
    return MeetingLinks(sub=request.sub, nbf=nbf, exp=exp, hosts=groups[0], guests=groups[1])


def _link(role: str, number: int, entry: Any, base: str, short_base: str | None) -> Link:
    cipher = entry.get("cipher") if isinstance(entry, dict) else None
    if not isinstance(cipher, str) or not cipher:
        raise MalformedResponse(SERVICE, status=200, detail=f"{role} {number} has no cipher")
    short_url = None
    if short_base is not None:
        short = entry.get("short")
        if not isinstance(short, str) or not short:
            raise MalformedResponse(SERVICE, status=200, detail=f"{role} {number} has no short id")
        short_url = short_base + short
    return Link(role=role, number=number, url=base + cipher, short_url=short_url)
