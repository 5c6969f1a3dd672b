"""The command line helps: ``python -m bot`` alone lists the commands, one line each, and each
command's ``--help`` says what it does and which settings it reads (real settings, each one a
row of the README's table)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SETTINGS_TABLE = README[README.index("### Settings"):README.index("## No public URL")]
COMMANDS = list(build_parser().get_default("summaries"))


def bot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          timeout=60)


def test_the_bot_alone_lists_every_command_one_line_each() -> None:
    done = bot()
    assert (done.returncode, done.stderr) == (0, "")
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert listed == COMMANDS
    for name in ("serve", "work", "listen", "abandoned", "audit", "sandbox", "links", "demo",
                 "new-key"):
        assert name in listed
    assert all(len(line) <= 100 for line in done.stdout.splitlines())


@pytest.mark.parametrize("command", ["serve", "work", "listen", "abandoned", "audit", "links",
                                     "demo", "webhooks", "release-jobs", "bench", "sandbox",
                                     "new-key"])
def test_each_command_says_what_it_does_and_the_settings_it_reads(command: str) -> None:
    done = bot(command, "--help")
    assert (done.returncode, done.stderr) == (0, "")
    text = " ".join(done.stdout.split())
    description = text.split("options:")[0].split("]", 1)[-1]
    assert len(description.split()) >= 8, description  # more than a usage line
    assert "settings: " in text
    named = re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b(?:EVENTS|HOST|PORT)\b",
                       text.split("settings: ")[1])
    for name in named:
        assert f"`{name}`" in SETTINGS_TABLE, f"{command} --help names {name}, no setting"


def test_what_each_command_reads_is_said_where_it_matters() -> None:
    """The settings that decide each command, by name."""
    expected = {"serve": ("WEBEX_BOT_TOKEN", "WEBHOOK_SECRET", "MEETING_KEYS", "PORT",
                          "WORKER_PROCESSES"),
                "work": ("WEBEX_BOT_TOKEN", "MEETING_KEYS", "STORAGE_URL", "EVENTS"),
                "listen": ("WEBEX_BOT_TOKEN", "MEETING_KEYS", "U2C_URL"),
                "abandoned": ("STORAGE_URL",),
                "audit": ("STORAGE_URL",),
                "sandbox": ("none",),
                "new-key": ("none",)}
    for command, names in expected.items():
        said = " ".join(bot(command, "--help").stdout.split()).split("settings: ")[1]
        assert all(name in said for name in names), (command, said)
    for reads_the_store_alone in ("abandoned", "audit"):
        said = " ".join(bot(reads_the_store_alone, "--help").stdout.split()).split("settings: ")[1]
        assert "WEBEX_BOT_TOKEN" not in said and "MEETING_KEYS" not in said
