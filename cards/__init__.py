"""Adaptive Cards (version 1.3, the one Webex renders) built as plain dicts.

Input ids and limits live in `cards.inputs`, shared with the handlers that read submissions.
"""

from cards.elements import ADAPTIVE_CARD_CONTENT_TYPE, attachment
from cards.form import meeting_form
from cards.help import help_card
from cards.inputs import CatalogDevice
from cards.links import LinkEntry, links_card

__all__ = [
    "ADAPTIVE_CARD_CONTENT_TYPE",
    "CatalogDevice",
    "LinkEntry",
    "attachment",
    "help_card",
    "links_card",
    "meeting_form",
]
