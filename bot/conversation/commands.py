"""What people type to the bot: the mention removed, the command and its options recognised.

The commands are one table (``CommandTable``): each entry its words, its handler and one line of
help, so parsing, dispatch, the help text and the help card all read the same list. Parsing never
raises, whatever the text: anything it does not recognise is the ``unknown`` command.
"""

from __future__ import annotations

import base64
import binascii
import html as html_lib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

UNKNOWN = "unknown"  # the name of whatever no entry's words match
EMPTY = "form"  # what an empty message, or a subject command without its subject, asks for
# A mention's tag cannot span other tags, nor its body another mention: without these bounds a
# message full of unclosed mentions took time cubic in its length (seconds for 30 kB).
_MENTION = re.compile(
    r"<spark-mention\b[^<>]*\bdata-object-id\s*=\s*[\"']([^\"']*)[\"'][^<>]*>"
    r"(?:[^<]|<(?!/?spark-mention\b))*?</spark-mention>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]*>")
_OPTION = re.compile(r"^([A-Za-z]+)=(.*)$", re.DOTALL)


Handler = TypeVar("Handler")


@dataclass(frozen=True)
class Command:
    """One recognised command; ``subject`` and ``options`` only for entries that take them."""

    name: str
    subject: str = ""
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry(Generic[Handler]):
    """One command: the words that call it (the first is its name), how the help shows it with
    one line of what it does, and what runs it. ``takes_subject``: the rest of the message is a
    subject and ``key=value`` options, as in ``meet Follow-up guests=2``."""

    words: tuple[str, ...]
    usage: str
    help: str
    handler: Handler
    takes_subject: bool = False

    @property
    def name(self) -> str:
        return self.words[0]


class CommandTable(Generic[Handler]):
    """The commands, in the order the help lists them; ``unknown`` runs what matches none."""

    def __init__(self, entries: Sequence[Entry[Handler]], *, unknown: Handler) -> None:
        self.entries = tuple(entries)
        self.unknown = unknown
        self._by_name = {entry.name: entry for entry in self.entries}
        self._by_word = {word: entry for entry in self.entries for word in entry.words}
        words = [word for entry in self.entries for word in entry.words]
        if len(self._by_word) != len(words) or any(word != word.lower() for word in words):
            raise ValueError("each command word must be lower case and belong to one command")
        if EMPTY not in self._by_name:
            raise ValueError(f"no command named {EMPTY!r} for empty messages")

    def parse(self, text: str) -> Command:
        """Recognise a command, case-insensitive and tolerant of punctuation around it."""
        cleaned = text.strip().lstrip("/!@,.:;- ").strip()
        if not cleaned:
            return Command(EMPTY)
        first, _, rest = cleaned.partition(" ")
        word = first.lower().strip(".,:;!?") or first.lower()
        entry = self._by_word.get(word)
        if entry is None:
            return Command(UNKNOWN)
        if not entry.takes_subject:
            return Command(entry.name)
        subject, options = _subject_and_options(rest.lstrip(":,- "))
        return Command(entry.name, subject=subject, options=options) if subject else Command(EMPTY)

    def handler(self, name: str) -> Handler:
        """What runs the command called ``name`` (a name ``parse`` gave)."""
        entry = self._by_name.get(name)
        return self.unknown if entry is None else entry.handler

    @property
    def names(self) -> frozenset[str]:
        """Every name ``parse`` can give, ``unknown`` included."""
        return frozenset({UNKNOWN, *self._by_name})

    def help_lines(self) -> tuple[tuple[str, str], ...]:
        """(usage, what it does) of each command, for the help text and the help card."""
        return tuple((entry.usage, entry.help) for entry in self.entries)


def person_uuid(person_id: str) -> str:
    """The raw UUID inside a base64 Webex person id (mentions may carry either form)."""
    try:
        decoded = base64.b64decode(person_id + "=" * (-len(person_id) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return person_id
    return decoded.rsplit("/", 1)[-1]


def strip_mention(html: str, text: str, bot_id: str, bot_names: tuple[str, ...]) -> str:
    """The message without the bot's mention: from ``html`` when present, else from ``text``."""
    if html:
        ids = {bot_id, person_uuid(bot_id)}
        without = _MENTION.sub(lambda m: "" if m.group(1) in ids else m.group(0), html)
        plain = html_lib.unescape(_TAG.sub(" ", without))
        return " ".join(plain.split())
    plain = " ".join(text.split())
    for name in sorted(filter(None, bot_names), key=len, reverse=True):
        rest = plain[len(name):]
        if plain.lower().startswith(name.lower()) and not rest[:1].isalnum():
            return rest.strip()
    return plain


def _subject_and_options(text: str) -> tuple[str, dict[str, str]]:
    """``Follow-up guests=3`` -> ("Follow-up", {"guests": "3"}); values may be quoted."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        tokens = text.split()
    words, options = [], {}
    for token in tokens:
        match = _OPTION.match(token)
        if match:
            options[match.group(1).lower()] = match.group(2)
        else:
            words.append(token)
    return " ".join(words), options
