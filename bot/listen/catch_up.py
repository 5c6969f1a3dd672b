"""After a gap in the websocket, list what Webex lets a bot list and store what it missed.

Webex does not replay events sent while a websocket was closed (as far as known). A bot may list
messages of its 1:1 spaces, and in group spaces the messages that mention it; those are caught up
here, bounded: the spaces with activity since the gap (at most ``spaces`` of each type), their
newest ``messages`` messages, none older than ``window``. Card submits and the bot being added
to a space cannot be listed: they are not caught up. Dedupe makes the catch-up safe to repeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.jobs.acceptance import Acceptance, Outcome
from bot.listen.resolve import message_event
from bot.upstream.webex import WebexClient

log = logging.getLogger(__name__)
# Messages stamped this long before the gap began are listed too: clocks differ a little.
MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class CatchUpLimits:
    """How far back and how much the catch-up looks (``window`` 0 turns it off)."""

    window_seconds: float = 3600.0
    spaces: int = 20
    messages: int = 20


@dataclass(frozen=True)
class CaughtUp:
    """What the catch-up did: messages found in the gap, newly stored, and what was not done."""

    found: int = 0
    stored: int = 0
    unstored: int = 0
    spaces_full: bool = False


def catch_up(webex: WebexClient, acceptance: Acceptance, *, since: float, now: float,
             limits: CatchUpLimits) -> CaughtUp:
    """Store the listable messages created after ``since`` (epoch seconds) that are not stored.

    Raises UpstreamError when Webex cannot be listed; what was stored before that stays stored.
    """
    start = max(since - MARGIN_SECONDS, now - limits.window_seconds)
    me = webex.me().id
    found = stored = unstored = 0
    spaces_full = False
    for room_type in ("direct", "group"):
        spaces = webex.spaces_by_activity(room_type, limits.spaces)
        recent = [space for space in spaces if _when(space.get("lastActivity")) >= start]
        spaces_full = spaces_full or len(recent) == limits.spaces
        for space in recent:
            for record in webex.recent_messages(str(space["id"]), None, limits.messages,
                                                mentioning_bot=room_type == "group"):
                if record.get("personId") == me or _when(record.get("created")) < start:
                    continue
                found += 1
                outcome = acceptance.take(message_event(record), source="catch-up")
                stored += outcome is Outcome.ACCEPTED
                unstored += not outcome.safe_to_acknowledge
    return CaughtUp(found, stored, unstored, spaces_full)


def _when(text: object) -> float:
    """Epoch seconds of a Webex timestamp; minus infinity when there is none."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("-inf")
