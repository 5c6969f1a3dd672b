"""What people type to the bot: the mention removed, the command and its options recognised.

Never raises, whatever the text: anything it does not recognise is the ``unknown`` command.
"""

from __future__ import annotations

import base64
import binascii
import html as html_lib
import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

CommandName = Literal["help", "form", "meet", "devices", "unknown"]

_WORDS: dict[str, CommandName] = {
    "help": "help", "?": "help", "hi": "help", "hello": "help", "start": "help",
    "new": "form", "meeting": "form", "form": "form",
    "meet": "meet",
    "devices": "devices", "device": "devices",
}
# A mention's tag cannot span other tags, nor its body another mention: without these bounds a
# message full of unclosed mentions took time cubic in its length (seconds for 30 kB).
_MENTION = re.compile(
    r"<spark-mention\b[^<>]*\bdata-object-id\s*=\s*[\"']([^\"']*)[\"'][^<>]*>"
    r"(?:[^<]|<(?!/?spark-mention\b))*?</spark-mention>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]*>")
_OPTION = re.compile(r"^([A-Za-z]+)=(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    """One recognised command; ``subject`` and ``options`` only matter for ``meet``."""

    name: CommandName
    subject: str = ""
    options: dict[str, str] = field(default_factory=dict)


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


def parse(text: str) -> Command:
    """Recognise a command, case-insensitive and tolerant of punctuation around it."""
    cleaned = text.strip().lstrip("/!@,.:;- ").strip()
    if not cleaned:
        return Command("form")
    first, _, rest = cleaned.partition(" ")
    word = first.lower().strip(".,:;!?") or first.lower()
    if word == "?" or first.strip() == "?":
        return Command("help")
    name = _WORDS.get(word, "unknown")
    if name != "meet":
        return Command(name)
    subject, options = _subject_and_options(rest.lstrip(":,- "))
    return Command("meet", subject=subject, options=options) if subject else Command("form")


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
