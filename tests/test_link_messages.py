"""Links as Webex messages: what the person should know travels with every part."""

from __future__ import annotations

import json

from bot.conversation.link_messages import CARD_BUDGET, MARKDOWN_BUDGET, compose
from bot.upstream.instant_connect import Link

NOTE = ("02:30 does not exist on Sun 8 Mar in America/Port_of_Spain: the clocks go forward then. "
        "The links start at 03:30 instead.")


def long_links(count: int) -> list[Link]:
    """Links as long as the broker's, so that 25 need several messages."""
    return [Link("guest", n, "https://instant.webex.com/gen/v1/talk?data=" + "x" * 1200 + str(n))
            for n in range(1, count + 1)]


def test_notes_follow_the_window_in_every_part_literally() -> None:
    messages = compose("Ward round", "Sun 8 Mar 2026 03:30 to 05:30 (America/Port_of_Spain)",
                       [], long_links(25), "Meeting links", notes=[NOTE])
    assert len(messages) > 1
    for message in messages:
        lines = message.markdown.splitlines()
        assert lines[1].startswith("Valid ")
        assert lines[2] == "Note: " + NOTE.replace("_", "\\_")
        assert NOTE in json.dumps(message.card, ensure_ascii=False)
        assert len(message.markdown.encode()) <= MARKDOWN_BUDGET
        assert len(json.dumps(message.card).encode()) <= CARD_BUDGET


def test_without_notes_the_links_follow_the_window() -> None:
    [message] = compose("Ward round", "w", [], long_links(1), "Meeting links")
    assert message.markdown.splitlines()[2].startswith("- **Guest 1**")


def test_a_zone_name_is_shown_literally_not_as_italics() -> None:
    """America/Port_of_Spain has two underscores: unescaped, 'of' would turn to italics."""
    window = "Tue 1 Dec 2026 09:00 to 11:00 (America/Port_of_Spain)"
    message = compose("Follow-up", window, [], long_links(1), "Meeting links")[0]
    assert "(America/Port\\_of\\_Spain)" in message.markdown
