"""The card envelope and the few text elements every card is made of."""

from collections.abc import Sequence
from typing import Any

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.3"  # the highest version Webex renders

Element = dict[str, Any]


def card(body: Sequence[Element], actions: Sequence[Element] = ()) -> Element:
    """Wrap elements in the card content Webex expects, so no builder forgets the version."""
    content: Element = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": list(body),
    }
    if actions:
        content["actions"] = list(actions)
    return content


def attachment(content: Element) -> Element:
    """Wrap card content as a message attachment, the only form in which Webex accepts a card."""
    return {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "content": content}


def text_block(text: str, **style: Any) -> Element:
    """Show text the bot wrote; wrapped, because clipped sentences help nobody."""
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def literal_text(text: str, **style: Any) -> Element:
    """Show text as typed, because a TextRun is never read as markdown (subjects, URLs)."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **style}]}


def heading(text: str) -> Element:
    """Title a card with text a person may have typed, shown literally."""
    return literal_text(text, size="medium", weight="bolder")
