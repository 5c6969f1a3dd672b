"""The card that hands out a meeting's host and guest links."""

from collections.abc import Sequence
from dataclasses import dataclass

from cards.elements import Element, card, heading, literal_text


@dataclass(frozen=True)
class LinkEntry:
    """One person's way into the meeting, e.g. "Host 1", with its short URL when one was made."""

    label: str
    url: str
    short_url: str | None = None


FULL_LINK = "full link"  # labels the long URL's field, under the short one


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
    body += [_link(number, entry) for number, entry in enumerate(links, start=1)]
    return card(body)


def _link(number: int, entry: LinkEntry) -> Element:
    """A link as its label over a copyable URL field with an Open button beside it.

    The URL goes in a one-line text field, not in text: a 1,400-character URL has no place to
    break, and a RichTextBlock would widen the card to its length, while a TextBlock is read as
    markdown (an `_` in the cipher can turn to italics and drop out of what is copied). A field
    shows the value literally, stays as wide as the card, and selects whole with one click and
    Ctrl+A. The short URL, when there is one, is the one to open and share; the long one follows.
    """
    best = entry.short_url or entry.url
    rows = [
        {
            "type": "ColumnSet",
            "columns": [
                {
                    "type": "Column",
                    "width": "stretch",
                    "items": [_url_field(number, entry.label, best)],
                },
                {
                    "type": "Column",
                    "width": "auto",
                    "verticalContentAlignment": "bottom",
                    "items": [
                        {
                            "type": "ActionSet",
                            "actions": [
                                {
                                    "type": "Action.OpenUrl",
                                    "title": "Open",
                                    "url": best,
                                    "style": "positive",
                                }
                            ],
                        }
                    ],
                },
            ],
        }
    ]
    if entry.short_url:
        rows.append(_url_field(number, f"{entry.label}: {FULL_LINK}", entry.url, full=True))
    return {"type": "Container", "separator": True, "items": rows}


def _url_field(number: int, label: str, url: str, *, full: bool = False) -> Element:
    """A one-line field holding `url`; its id is unique in the card and never submitted."""
    return {
        "type": "Input.Text",
        "id": f"link{number}{'Full' if full else ''}",
        "label": label,
        "style": "url",
        "value": url,
    }
