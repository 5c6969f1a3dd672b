"""Every card the bot sends, built the way the bot builds them, with realistic content.

Links are as long as the broker's (about 1,400 characters: a PBES2 JWE in base64url) and go
through `compose()`, so each card is one message exactly as posted, split under Webex's limits.
"""

from __future__ import annotations

import base64
import inspect
import json
import random
from typing import Any

from bot.conversation.channels import EmailChannel, SmsChannel
from bot.conversation.link_messages import compose
from bot.conversation.router import COMMANDS
from bot.conversation.timewindow import describe_window, zone
from bot.upstream.instant_connect import Link
from bot.upstream.instant_connect.config import InstantConnectConfig
from cards.form import meeting_form
from cards.help import help_card
from cards.inputs import CatalogDevice

Card = dict[str, Any]

BOT_NAME = "Instant Connect"
SHORT_BASE = "https://instant.webex.com/visit/"  # the broker's baseUrl for short links
LINK_COUNTS = (1, 2, 9, 25)
TIMEZONE = "America/Argentina/Buenos_Aires"  # a long zone name, as the form prints it
WINDOW = describe_window(1_796_113_800, 1_796_121_000, zone(TIMEZONE, "UTC"))
DEVICES = ["Exam Room 1", "cart-7@clinic.example.com"]
NOTE = (
    "02:30 does not exist on Sun 8 Mar in America/Port_of_Spain: the clocks go forward then. "
    "The links start at 03:30 instead."
)
SMALL_CATALOG = (
    CatalogDevice("Exam Room 1", "exam-room-1@clinic.example.com"),
    CatalogDevice("Cart 7", "cart-7@clinic.example.com"),
    CatalogDevice(
        "Consultation Room 12 (second floor, east wing)", "consult-12@clinic.example.com"
    ),
)
LARGE_CATALOG = tuple(
    CatalogDevice(f"Exam Room {n}", f"exam-room-{n}@clinic.example.com") for n in range(1, 13)
)


def bot_cards() -> list[tuple[str, Card]]:
    """(name, card content) for every kind of card the bot posts, in a stable order."""
    cards: list[tuple[str, Card]] = [
        ("help", help_card(bot_name=BOT_NAME, commands=COMMANDS.help_lines())),
    ]
    for place, group in (("1to1", False), ("space", True)):
        for suffix, catalog in (
            ("", ()),
            ("-catalog", SMALL_CATALOG),
            ("-catalog12", LARGE_CATALOG),
        ):
            form = meeting_form(catalog, group_space=group, timezone_name=TIMEZONE)
            cards.append((f"form-{place}{suffix}", form))
    # The form that sends guests their links by email and SMS, where this version has it.
    with_channels: Any = meeting_form
    if "channels" in inspect.signature(with_channels).parameters:
        form = with_channels(
            SMALL_CATALOG, group_space=True, timezone_name=TIMEZONE,
            channels=(EmailChannel.way, SmsChannel.way),
        )
        cards.append(("form-space-contacts", form))
    for count in LINK_COUNTS:
        for short in (False, True):
            cards += _links_cards(count, short=short)
    return cards


def _links_cards(count: int, *, short: bool) -> list[tuple[str, Card]]:
    """The messages of one meeting with `count` links, hosts first, as the bot posts them."""
    rng = random.Random(count * 2 + short)
    config = InstantConnectConfig()
    hosts = max(1, count // 5) if count > 1 else 0
    links = [
        Link(
            role=role,
            number=number,
            url=base.replace("{vertical}", "gen") + _cipher(rng),
            short_url=SHORT_BASE + _short_code(rng) if short else None,
        )
        for role, base, total in (
            ("host", config.host_url_base, hosts),
            ("guest", config.guest_url_base, count - hosts),
        )
        for number in range(1, total + 1)
    ]
    notes = [NOTE] if count == 9 else []
    messages = compose("Patient follow-up", WINDOW, DEVICES, links, "Meeting links", notes=notes)
    kind = "short" if short else "long"
    name = f"links-{count:02d}-{kind}"
    if len(messages) == 1:
        return [(name, messages[0].card)]
    return [
        (f"{name}-{part}of{len(messages)}", message.card)
        for part, message in enumerate(messages, start=1)
    ]


def _cipher(rng: random.Random) -> str:
    """A compact PBES2 JWE as the broker returns it: 5 base64url parts, about 1,340 characters."""
    header = {
        "p2s": _b64(rng.randbytes(rng.randint(8, 64))),
        "p2c": rng.randint(1000, 32767),
        "enc": "A256GCM",
        "alg": "PBES2-HS512+A256KW",
        "cty": "JWT",
    }
    parts = [
        _b64(json.dumps(header, separators=(",", ":")).encode()),
        _b64(rng.randbytes(40)),
        _b64(rng.randbytes(12)),
        _b64(rng.randbytes(880)),
        _b64(rng.randbytes(16)),
    ]
    return ".".join(parts)


def _short_code(rng: random.Random) -> str:
    return "".join(
        rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(7)
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
