"""Every card the bot sends, built the way the bot builds them, with realistic content.

Links are as long as the broker's (about 1,400 characters: a PBES2 JWE in base64url) and go
through `compose()`, so each card is one message exactly as posted, split under Webex's limits.
"""

from __future__ import annotations

import base64
import inspect
import json
import random
from dataclasses import replace
from typing import Any

from bot.conversation.channels import EmailChannel, SmsChannel
from bot.conversation.link_messages import compose
from bot.conversation.router import COMMANDS
from bot.conversation.timewindow import describe_window, zone
from bot.upstream.instant_connect import Link
from bot.upstream.instant_connect.config import InstantConnectConfig
from cards.form import meeting_form
from cards.help import help_card
from cards.inputs import MEETINGS_PER_PAGE, CatalogDevice
from cards.meetings import (
    GuestReached,
    MeetingStatus,
    MeetingSummary,
    cancel_card,
    change_time_card,
    meetings_card,
)

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
    return cards + _meetings_cards()


def _meetings_cards() -> list[tuple[str, Card]]:
    """The meetings card: a usual page, the longest page, a later page, none; and the two
    cards its buttons open in place, on their own so that their layout is measured too."""
    zone = TIMEZONE
    usual = _usual_meetings()
    return [
        ("meetings-1to1", meetings_card(usual, timezone_name=zone, in_space=False,
                                        has_more=True)),
        ("meetings-space-longest", meetings_card(_longest_meetings(), timezone_name=zone,
                                                 in_space=True, has_more=True)),
        ("meetings-space-page3", meetings_card(
            [replace(m, made_by="Dr. Ana Beltrán", can_act=False) for m in usual[:2]],
            timezone_name=zone, in_space=True, page=3)),
        ("meetings-none", meetings_card([], timezone_name=zone, in_space=False)),
        ("meeting-change-time", change_time_card(usual[0], timezone_name=zone)),
        ("meeting-cancel", cancel_card(usual[0])),
    ]


def _usual_meetings() -> list[MeetingSummary]:
    """A morning at a clinic: meetings to come, one under way, one moved, one over, one off."""
    day = "Tue 1 Dec 2026"
    zoe = GuestReached("z•••@example.org", "email sent")
    phone = GuestReached("+54 9 •• •••• ••12", "text message sent")
    return [
        MeetingSummary("m7Qx2", "Patient follow-up", f"{day} 11:30 to 12:00 ({TIMEZONE})",
                       MeetingStatus.UPCOMING, hosts=1, guests=2, devices=("Exam Room 1",),
                       reached=(zoe, phone), start_date="2026-12-01", start_time="11:30"),
        MeetingSummary("m4Kd9", "Insurance questions", f"{day} 10:00 to 10:45 ({TIMEZONE})",
                       MeetingStatus.IN_PROGRESS, hosts=1, guests=1, moved=True,
                       start_date="2026-12-01", start_time="10:00"),
        MeetingSummary("m1Zb7", "Second opinion, cardiology",
                       f"{day} 08:30 to 09:00 ({TIMEZONE})", MeetingStatus.ENDED, hosts=2,
                       guests=1, reached=(GuestReached("j•••@example.com", "email failed"),)),
        MeetingSummary("m0Ca3", "Results review", f"{day} 08:00 to 08:15 ({TIMEZONE})",
                       MeetingStatus.CANCELLED, hosts=1, guests=1, reached=(zoe,)),
    ]


def _longest_meetings() -> list[MeetingSummary]:
    """A full page of meetings with everything at its longest: subject, devices, contacts."""
    subject = "Follow-up with the family about the results of the scan, the next steps and " \
              "the home care plan for the weeks to come"[:120]
    when = f"Sun 25 Oct 2026 01:30 UTC+02:00 to Mon 26 Oct 02:30 UTC+01:00 ({TIMEZONE})"
    devices = tuple(f"consultation-room-{n}-second-floor-east-wing@clinic.example.com"
                    for n in range(1, 26))
    reached = tuple(
        GuestReached(f"g•••@regional-hospital-trust-{n}.example.org",
                     "text message may have been delivered")
        for n in range(1, 11))
    return [
        MeetingSummary(f"m{n}xxxxxxxxxxxxxxxxxxxxxx", subject, when, MeetingStatus.UPCOMING,
                       hosts=5, guests=20, devices=devices, reached=reached,
                       made_by="Dr. Maria Fernanda Gutiérrez de la Fuente Rodríguez",
                       moved=True, start_date="2026-10-25", start_time="01:30")
        for n in range(MEETINGS_PER_PAGE)
    ]


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
