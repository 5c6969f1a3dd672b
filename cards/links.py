"""The card that hands out a meeting's host and guest links."""

from collections.abc import Sequence
from dataclasses import dataclass

from cards.elements import Element, card, heading, literal_text, text_block


@dataclass(frozen=True)
class LinkEntry:
    """One person's way into the meeting, e.g. "Host 1", with its short URL when one was made."""

    label: str
    url: str
    short_url: str | None = None


def links_card(
    *,
    subject: str,
    window: str,
    devices: Sequence[str],
    links: Sequence[LinkEntry],
    part: int = 1,
    parts: int = 1,
    notes: Sequence[str] = (),
) -> Element:
    """List the links with an Open button each; `part`/`parts` number cards that share a meeting.

    `notes` say how the request was read (a start time the clocks skip, say), under the window.
    """
    title = f"{subject} (part {part} of {parts})" if parts > 1 else subject
    facts = [{"title": "Valid", "value": window}]
    if devices:
        facts.append({"title": "Devices", "value": ", ".join(devices)})
    body = [heading(title), {"type": "FactSet", "facts": facts}]
    body += [literal_text(note, isSubtle=True) for note in notes]
    body += [_link(entry) for entry in links]
    return card(body)


def _link(entry: LinkEntry) -> Element:
    """Show a link as a labelled Open button plus its URLs as text people can copy."""
    open_button = {
        "type": "ActionSet",
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open", "url": entry.short_url or entry.url}
        ],
    }
    urls = [entry.short_url, entry.url] if entry.short_url else [entry.url]
    return {
        "type": "Container",
        "separator": True,
        "items": [
            {
                "type": "ColumnSet",
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "verticalContentAlignment": "center",
                        "items": [text_block(entry.label, weight="bolder")],
                    },
                    {"type": "Column", "width": "auto", "items": [open_button]},
                ],
            },
            *(literal_text(url, fontType="monospace", size="small") for url in urls),
        ],
    }
