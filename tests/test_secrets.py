"""Secrets stay out of logs: the session-wide audit is live and can fail, and making links logs no
cipher, on success or when the broker answers with something the bot cannot use.

The audit itself (``tests/conftest.py``) sees every record of the whole suite; these tests make
sure it works and look at one conversation closely.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

import bot
from bot.devtools.sandbox import Sandbox
from bot.logs import JsonFormatter
from cards import inputs as ids
from tests.conftest import (
    LOG_AUDIT,
    WEBHOOK_SECRET,
    RunningBot,
    leaks,
)
from tests.support.keys import MEETING_KEYS


def real_cipher(sandbox: Sandbox) -> str:
    """A genuine Instant Connect cipher, straight from the sandbox broker."""
    answer = requests.post(f"{sandbox.broker_url}/api/v2/joseencrypt", timeout=10,
                           headers={"Authorization": f"Bearer {sandbox.bot_token}"},
                           json={"jwt": {"sub": "audit"},
                                 "aud": "a4d886b0-979f-4e2c-a958-3e8c14605e51"})
    return str(answer.json()["host"][0]["cipher"])


def test_the_audit_watches_every_record_of_the_session() -> None:
    """Installed on the root logger at DEBUG, so no level or thread escapes it."""
    root = logging.getLogger()
    assert LOG_AUDIT in root.handlers
    assert root.level == logging.DEBUG
    logging.getLogger("bot.test_secrets").debug("the audit counts this line")
    assert LOG_AUDIT.lines > 0


RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
BOT_ROOT = Path(bot.__file__).parent


def extra_keys(path: Path) -> Iterator[str]:
    """The literal keys of every ``extra={...}`` passed to a call in a module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                    yield from (key.value for key in keyword.value.keys
                                if isinstance(key, ast.Constant) and isinstance(key.value, str))


def test_every_log_call_can_make_a_record() -> None:
    """No extra key is a reserved LogRecord name."""
    # Such a key makes logging raise KeyError once that level is enabled: the line is lost, or
    # the caller crashes, exactly when someone turns logging up.
    offenders = {
        ".".join(path.relative_to(BOT_ROOT.parent).with_suffix("").parts)
        for path in BOT_ROOT.rglob("*.py") if set(extra_keys(path)) & RESERVED
    }
    assert offenders == set()


def test_the_audit_recognises_tokens_the_secrets_and_ciphers(sandbox: Sandbox) -> None:
    """What the audit must catch, inside a JSON log line as the formatter writes it."""
    cipher = real_cipher(sandbox)
    assert cipher.startswith("eyJ") and cipher.count(".") == 4
    line = json.dumps({"message": "oops", "detail": f"token {sandbox.bot_token} data={cipher}",
                       "secret": WEBHOOK_SECRET, "keys": MEETING_KEYS})
    assert sorted(leaks(line)) == sorted([sandbox.bot_token, cipher, "WEBHOOK_SECRET",
                                          "MEETING_KEYS"])
    guests = json.dumps({"message": "sent", "to": "zoe.b@example.org", "sms": "+33612345678"})
    assert sorted(leaks(guests)) == ["+33612345678", "zoe.b@example.org"]


@pytest.mark.parametrize(
    "line",
    ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",  # a JWS: three parts, not a cipher
     "eyJ without dots", "sandbox-bot-token-short", "a trackingId ROUTER_0A1B",
     "sent to z•••@example.org and +33 6 •• •• •• 78"],  # masked contacts
)
def test_the_audit_does_not_cry_wolf(line: str) -> None:
    """Ordinary lines, and a signed (not encrypted) token, are not reported."""
    assert leaks(line) == []


def create_inputs() -> dict[str, str]:
    """A valid form submit: two hosts (sent privately) and two guests."""
    return {ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Audit", ids.HOSTS: "2", ids.GUESTS: "2"}


def malformed_answer(sandbox: Sandbox) -> set[str]:
    """The broker answers 200 with a real cipher but fewer links than asked for; the cipher."""
    cipher = real_cipher(sandbox)
    body = {"host": [{"cipher": cipher}], "guest": [], "trackingId": "T-AUDIT"}
    sandbox.fail("POST", "/api/v2/joseencrypt", status=200, body=body)
    return {cipher}


OUTCOMES: dict[str, Callable[[Sandbox], set[str]]] = {
    "links created": lambda sandbox: set(),
    "malformed answer carrying ciphers": malformed_answer,
}


@pytest.mark.parametrize("prepare", OUTCOMES.values(), ids=OUTCOMES.keys())
def test_making_links_logs_no_cipher_and_no_token(
    running_bot: RunningBot, caplog: pytest.LogCaptureFixture,
    prepare: Callable[[Sandbox], set[str]],
) -> None:
    """Every record of a whole conversation, formatted unmasked: no cipher, token or secret."""
    sandbox = running_bot.sandbox
    caplog.set_level(logging.DEBUG)
    alice = sandbox.add_person("alice@clinic.example.com", "Alice Doctor")
    room = sandbox.add_room("Clinic", members=[alice])
    sandbox.post_message(alice, room, "new")
    [form] = running_bot.wait_for_bot_messages(room, 1)
    planted = prepare(sandbox)
    sandbox.submit_card(alice, form["id"], create_inputs())
    running_bot.idle()

    said = [m.get("markdown", "") for r in (room, sandbox.direct_room(alice))
            for m in running_bot.bot_messages(r)]
    ciphers = planted | {c for text in said for c in leaks(text)}
    assert ciphers, "the conversation must have made ciphers for this test to mean anything"
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any(record.name.startswith("bot.") for record in caplog.records)
    assert [line for line in lines if leaks(line)] == []
    assert not any(cipher in line for cipher in ciphers for line in lines)
    assert sandbox.bot_token not in caplog.text and WEBHOOK_SECRET not in caplog.text


def test_a_malformed_answer_is_explained_without_its_ciphers(
    running_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The person hears the broker's answer was unusable, with its reference, never a cipher."""
    sandbox = running_bot.sandbox
    alice = sandbox.add_person("alice@clinic.example.com", "Alice Doctor")
    dm = sandbox.direct_room(alice)
    malformed_answer(sandbox)
    sandbox.post_message(alice, dm, "meet Audit guests=2")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert reply["markdown"].startswith("Sorry, I could not finish that.")
    assert "T-AUDIT" in reply["markdown"]
    assert leaks(reply["markdown"]) == []
    assert not sandbox.message(reply["id"]).get("attachments")
