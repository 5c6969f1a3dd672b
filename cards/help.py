"""The help card: what the bot understands, and a button to the meeting form."""

from collections.abc import Sequence

from cards.elements import Element, card, heading, text_block
from cards.inputs import ACTION, ACTION_SHOW_FORM


def help_card(*, bot_name: str, commands: Sequence[tuple[str, str]]) -> Element:
    """List the commands as (command, what it does) and offer the form for people who prefer it."""
    body = [
        heading(f"What {bot_name} can do"),
        {"type": "FactSet", "facts": [{"title": c, "value": what} for c, what in commands]},
        text_block(f"In a group space, start your message with @{bot_name}.", isSubtle=True),
    ]
    show_form = {
        "type": "Action.Submit",
        "title": "Open the meeting form",
        "data": {ACTION: ACTION_SHOW_FORM},
    }
    return card(body, [show_form])
