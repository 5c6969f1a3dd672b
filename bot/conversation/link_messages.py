"""Meeting links as Webex messages: a card per message, markdown fallback, within size limits.

A Webex message's markdown is at most 7439 bytes and 25 long links (each ~1 kB) do not fit in one,
so the links are packed greedily into as few messages as fit, numbered "part i of n".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.upstream.instant_connect import Link
from cards.links import LinkEntry, links_card

MARKDOWN_BUDGET = 7000  # headroom below Webex's 7439-byte limit for its own accounting
CARD_BUDGET = 24_000  # card size limits are undocumented; stay well inside any plausible one
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~|])")


@dataclass(frozen=True)
class Outgoing:
    """One message to post: its markdown (also the card's fallback) and its card."""

    markdown: str
    card: dict[str, Any]


def escape_markdown(text: str) -> str:
    """Show text people typed literally, never as markdown formatting or links."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def compose(
    subject: str,
    window: str,
    devices: Sequence[str],
    links: Sequence[Link],
    heading: str,
    *,
    notes: Sequence[str] = (),
) -> list[Outgoing]:
    """As few messages as carry every link, each within the markdown and card budgets.

    ``notes`` (how the request was read, e.g. a start time the clocks skip) go under the window
    in every part, since each part may be the one a person reads or forwards.
    """
    groups: list[list[Link]] = []
    for link in links:
        if groups and _fits([*groups[-1], link], subject, window, devices, heading, notes):
            groups[-1].append(link)
        else:
            groups.append([link])
    return [
        _render(group, subject, window, devices, heading, notes, part, len(groups))
        for part, group in enumerate(groups, start=1)
    ]


def _fits(
    group: list[Link],
    subject: str,
    window: str,
    devices: Sequence[str],
    heading: str,
    notes: Sequence[str],
) -> bool:
    message = _render(group, subject, window, devices, heading, notes, 99, 99)
    return (
        len(message.markdown.encode("utf-8")) <= MARKDOWN_BUDGET
        and len(json.dumps(message.card).encode("utf-8")) <= CARD_BUDGET
    )


def _render(
    group: Sequence[Link],
    subject: str,
    window: str,
    devices: Sequence[str],
    heading: str,
    notes: Sequence[str],
    part: int,
    parts: int,
) -> Outgoing:
    numbering = f" (part {part} of {parts})" if parts > 1 else ""
    # The window too: a zone such as America/Port_of_Spain would otherwise turn to italics.
    lines = [f"**{heading}: {escape_markdown(subject)}**{numbering}",
             f"Valid {escape_markdown(window)}"]
    lines += [f"Note: {escape_markdown(note)}" for note in notes]
    if devices:
        lines.append(f"Dialling in: {escape_markdown(', '.join(devices))}")
    for link in group:
        lines.append(f"- **{link.label}**: {link.best_url}")
        if link.short_url:
            lines.append(f"  {link.url}")
    card = links_card(
        subject=f"{heading}: {subject}",
        window=window,
        devices=devices,
        notes=notes,
        links=[LinkEntry(link.label, link.url, link.short_url) for link in group],
        part=part,
        parts=parts,
    )
    return Outgoing(markdown="\n".join(lines), card=card)
