"""Text people type that will be shown to others: what in it could hide or reorder what it says.

A subject and a note for guests travel to Webex, to the broker and to guests' inboxes and phones,
so the rule is one for every place that takes such text, and each says the same to the person.
"""

from __future__ import annotations

import re
import unicodedata

# What people type that changes how text looks, kept where it has that effect: joiners shape
# Persian, Arabic, Indic and Mongolian letters and glue emoji together; direction marks place
# punctuation and digits next to right-to-left words, but unlike overrides turn no word around.
_JOINERS = frozenset("\u200c\u200d\u180e")
_DIRECTION_MARKS = frozenset("\u200e\u200f\u061c")
_FLAG_TAGS = re.compile("\U0001F3F4[\U000E0030-\U000E0039\U000E0061-\U000E007A]{1,7}\U000E007F")
# New emoji arrive here every year, before this Python's Unicode data knows them.
_PICTOGRAPHS = range(0x1F000, 0x1FB00)
_REFUSED = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
_SHOWN_BEFORE = 20


def disguise_problem(text: str) -> str | None:
    """What to remove so ``text`` reads as it is stored, each character by name and place.

    Refused: controls, line and paragraph separators, private-use, surrogate and unassigned code
    points, and every invisible format character except joiners after a visible character,
    direction marks, and the tags of a subdivision flag (England, Scotland, Wales). Bidi
    overrides, embeddings and isolates can make text read backwards; a zero-width space, word
    joiner, soft hyphen or byte-order mark shows nothing and can hide a difference between two
    texts that look alike. A variation selector must follow the character it varies: a run of
    them is a known way to hide data after an emoji.
    """
    in_flags = {i for found in _FLAG_TAGS.finditer(text) for i in range(found.start() + 1,
                                                                       found.end())}
    bad = [i for i in range(len(text)) if i not in in_flags and not _typeable(text, i)]
    if not bad:
        return None
    refused = set(bad)
    runs: list[list[int]] = []
    for index in bad:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    named = [f"{_run_names(text, run)} {_place(text, run[0], refused)}" for run in runs[:3]]
    more = f"; and more in {len(runs) - 3} other places" if len(runs) > 3 else ""
    return f"Remove {'; '.join(named)}{more}: such characters can hide or reorder text."


def _typeable(text: str, index: int) -> bool:
    """Whether the character at ``index`` is one a person types, where a person would type it."""
    char = text[index]
    before = text[index - 1] if index else " "  # the start is like a space: nothing to join
    if char in _JOINERS:
        return _is_base(before) or unicodedata.category(before).startswith("M")
    if "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef":
        return _is_base(before)
    if char in _DIRECTION_MARKS:
        return True
    category = unicodedata.category(char)
    if category == "Cn":
        return ord(char) in _PICTOGRAPHS
    return category not in _REFUSED


def _is_base(char: str) -> bool:
    """A letter, digit, symbol or punctuation mark: what joiners and variation selectors follow."""
    category = unicodedata.category(char)
    return category[0] in "LNSP" or (category == "Cn" and ord(char) in _PICTOGRAPHS)


def _run_names(text: str, run: list[int]) -> str:
    """The characters of one run side by side, the first few by name."""
    names = ", ".join(_character_name(text[index]) for index in run[:2])
    return f"{names} and {len(run) - 2} more" if len(run) > 2 else names


def _character_name(char: str) -> str:
    """``ZERO WIDTH SPACE (U+200B)``; just the code point for characters without a name."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    return f"{name} ({code})" if name else code


def _place(text: str, index: int, refused: set[int]) -> str:
    """Where a person finds the character: after the words they see just before it.

    Not a count: a person counts the health-worker emoji as one character, Python as four.
    """
    seen = "".join(char for i, char in enumerate(text[:index]) if i not in refused)
    if not seen:
        return "at the start"
    if len(seen) <= _SHOWN_BEFORE:
        return f"after '{seen}'"
    shown = seen[-_SHOWN_BEFORE:]
    if " " in shown[:-1]:
        shown = shown[shown.index(" ") + 1 :]  # whole words
    return f"after '…{shown}'"
