"""The command table: one list drives parsing, dispatch and the help, so a command is one entry."""

from __future__ import annotations

import pytest

from bot.conversation.commands import UNKNOWN, Command, CommandTable, Entry
from bot.conversation.router import COMMANDS


def table(*extra: Entry[str]) -> CommandTable[str]:
    form = Entry(("form", "new"), "new", "the form", "form handler")
    return CommandTable([form, *extra], unknown="unknown handler")


def test_every_word_of_every_entry_names_its_command_in_any_case() -> None:
    for entry in COMMANDS.entries:
        for word in entry.words:
            expected = entry.name if not entry.takes_subject else "form"  # no subject: the form
            assert COMMANDS.parse(word).name == expected
            assert COMMANDS.parse(f"/{word.upper()}").name == expected


def test_a_new_entry_is_parsed_dispatched_and_listed_in_the_help() -> None:
    ping = Entry(("ping", "pong"), "ping", "check that I am listening", "ping handler")
    commands = table(ping)
    assert commands.parse("Pong?") == Command("ping")
    assert commands.handler("ping") == "ping handler"
    assert commands.help_lines() == (("new", "the form"), ("ping", "check that I am listening"))
    assert commands.names == {"form", "ping", UNKNOWN}


def test_a_command_with_a_subject_takes_options_and_without_one_is_the_form() -> None:
    commands = table(Entry(("meet",), "meet <subject>", "links", "meet", takes_subject=True))
    assert commands.parse("meet: Follow-up guests=2") == Command(
        "meet", subject="Follow-up", options={"guests": "2"})
    assert commands.parse("meet guests=2") == Command("form")
    assert commands.parse("  ") == Command("form")


def test_anything_else_runs_the_unknown_handler() -> None:
    commands = table()
    assert commands.parse("weather?") == Command(UNKNOWN)
    assert commands.handler(UNKNOWN) == "unknown handler"


@pytest.mark.parametrize("words", [("new",), ("Ping",)])
def test_a_word_given_twice_or_not_lower_case_is_refused_when_the_table_is_built(
    words: tuple[str, ...],
) -> None:
    with pytest.raises(ValueError, match="lower case and belong to one command"):
        table(Entry(words, "x", "x", "x"))


def test_a_table_without_the_form_for_empty_messages_is_refused() -> None:
    with pytest.raises(ValueError, match="form"):
        CommandTable([Entry(("help",), "help", "this help", "h")], unknown="u")
