"""Every card the bot sends, rendered by Microsoft's Adaptive Cards renderer, is clean and fits.

Webex's desktop and web clients build on npm `adaptivecards`; `bot/devtools/card_render` renders
each card with it in headless Chromium at the width of a Webex message column. A parse or
validation warning, or content wider than the card (a URL that does not wrap), fails here.

Skipped only when node or chromium is not installed; missing node modules (`npm ci` in
bot/devtools/card_render) are an error, since CI installs them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.card_render import (
    CARD_WIDTH,
    Rendered,
    bot_cards,
    missing_programs,
    render,
    render_cards,
)
from cards.elements import card
from tests.support.card_schema import validate_card

ABSENT = missing_programs()  # node or chromium; CI installs both
pytestmark = pytest.mark.slow
needs_renderer = pytest.mark.skipif(ABSENT is not None, reason=f"{ABSENT}")

LONG_URL = "https://instant.webex.com/gen/v1/talk?int=jose&v=1&data=" + "eyJhbGciOiJQQkVTMi" * 75
FRAME = 2 * 12 + 2  # the screenshot's padding and the card's border around CARD_WIDTH


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Rendered]:
    return render_cards(tmp_path_factory.mktemp("cards"))


@needs_renderer
def test_every_card_the_bot_sends_renders_without_warnings_or_overflow(
    rendered: list[Rendered],
) -> None:
    problems = [f"{r.name}: {p}" for r in rendered for p in r.problems]
    assert not problems, "\n".join(problems)


@needs_renderer
def test_every_card_is_rendered_at_the_column_width_as_json_and_png(
    rendered: list[Rendered],
) -> None:
    names = [name for name, _ in bot_cards()]
    assert [r.name for r in rendered] == names
    assert {"help", "form-1to1", "form-space-catalog", "links-25-short-7of7", "meetings-1to1",
            "meetings-space-longest", "meetings-none", "meeting-change-time",
            "meeting-cancel"} <= set(names)
    for result in rendered:
        assert result.png.read_bytes().startswith(b"\x89PNG"), result.name
        assert result.card.is_file(), result.name
        assert result.width == CARD_WIDTH + FRAME, result.name


def test_the_cards_rendered_are_valid_for_webex() -> None:
    for name, content in bot_cards():
        try:
            validate_card(content)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None


# The checker itself: it must be able to fail.


@needs_renderer
def test_the_renderer_reports_a_url_that_widens_the_card(tmp_path: Path) -> None:
    url_text = {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": LONG_URL}]}
    wrapped = {"type": "TextBlock", "text": LONG_URL, "wrap": True}
    [unwrapped, fits] = render(
        [("unwrapped", card([url_text])), ("wrapped", card([wrapped]))], tmp_path
    )
    assert any("sticks out of the card" in o or "px wide" in o for o in unwrapped.overflow)
    assert fits.ok, fits.problems


@needs_renderer
def test_the_renderer_reports_parse_and_validation_warnings(tmp_path: Path) -> None:
    buttons = [{"type": "Action.OpenUrl", "title": f"B{n}", "url": "https://a.example"}
               for n in range(6)]
    cards = [
        ("too-many-actions", card([{"type": "ActionSet", "actions": buttons}])),
        ("unknown-element", card([{"type": "Media", "sources": []}, {"type": "Carousel"}])),
        ("bad-value", card([{"type": "TextBlock", "text": "x", "size": "huge"}])),
        ("newer-version", {**card([{"type": "TextBlock", "text": "x"}]), "version": "1.5"}),
    ]
    found = {r.name: " ".join(r.warnings) for r in render(cards, tmp_path)}
    assert "TooManyActions" in found["too-many-actions"]
    assert 'Unknown element type "Carousel"' in found["unknown-element"]
    assert "InvalidPropertyValue" in found["bad-value"]
    assert "UnsupportedCardVersion" in found["newer-version"]


@needs_renderer
def test_the_renderer_reports_text_cut_off_to_fit(tmp_path: Path) -> None:
    clipped = {"type": "TextBlock", "text": "word " * 200}  # wrap is off: one ellipsed line
    [result] = render([("clipped", card([clipped]))], tmp_path)
    assert result.overflow and not result.warnings
