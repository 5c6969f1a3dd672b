"""What a message may contain and how it reads back: size limits, the card rule, html, mentions."""

from __future__ import annotations

import html
from typing import Any

from .ids import raw_uuid
from .responses import ApiError

MAX_MESSAGE_BYTES = 7439
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CONTENT_KEYS = ("text", "markdown", "html", "attachments", "mentionedPeople")


def _paragraph(text: str) -> str:
    """Render text as Webex does for plain messages: one escaped paragraph."""
    return f"<p>{html.escape(text, quote=False)}</p>"


def _checked_text(body: dict[str, Any], key: str) -> str | None:
    """Read text or markdown, refusing non-strings and anything over 7439 UTF-8 bytes."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string.")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ApiError(400, f"{key} is not valid UTF-8 text.") from None
    if size > MAX_MESSAGE_BYTES:
        raise ApiError(400, 'Unable to post message to room: "The request payload is too big"')
    return value


def _checked_attachments(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Read attachments: at most one, and only an Adaptive Card."""
    value = body.get("attachments")
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(400, "attachments must be a list.")
    if len(value) > 1:
        raise ApiError(400, "Only one attachment per message is supported.")
    for attachment in value:
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_CONTENT_TYPE:
            raise ApiError(400, f"Attachment contentType must be {CARD_CONTENT_TYPE}.")
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            raise ApiError(400, 'Attachment content must be an object with "type": "AdaptiveCard".')
    return value or None


def bot_content(body: dict[str, Any]) -> dict[str, Any]:
    """Turn a POST/PUT /messages body into stored content, enforcing the Webex limits."""
    text = _checked_text(body, "text")
    markdown = _checked_text(body, "markdown")
    attachments = _checked_attachments(body)
    if text is None and markdown is None and attachments is None:
        raise ApiError(400, "A message needs text, markdown or an attachment.")
    content: dict[str, Any] = {"text": text if text is not None else markdown}
    if markdown is not None:
        content["markdown"] = markdown
        content["html"] = _paragraph(markdown)
    if attachments is not None:
        content["attachments"] = attachments
    return {k: v for k, v in content.items() if v is not None}


def person_content(
    text: str, *, room_type: str, bot: dict[str, Any], mention_bot: bool, mention_form: str
) -> dict[str, Any]:
    """Write what a person's client would send, with the bot mention in group spaces."""
    if room_type != "group" or not mention_bot:
        return {"text": text, "html": _paragraph(text)}
    if mention_form not in ("id", "uuid"):
        raise ValueError('mention_form must be "id" or "uuid"')
    object_id = bot["id"] if mention_form == "id" else raw_uuid(bot["id"])
    name = bot["firstName"]
    tag = (
        f'<spark-mention data-object-type="person" data-object-id="{object_id}">'
        f"{html.escape(name)}</spark-mention>"
    )
    return {
        "text": f"{name} {text}",
        "html": f"<p>{tag} {html.escape(text, quote=False)}</p>",
        "mentionedPeople": [bot["id"]],
    }
