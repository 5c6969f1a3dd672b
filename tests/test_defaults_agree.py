"""A default, its check and the chat read the same things the same way.

``DEFAULT_VALID_FOR`` is what ``meet ... valid=`` becomes when none is typed, so it accepts
exactly what the chat accepts; a time typed as people write it (``time=9:00``) is 09:00.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.conversation.access import AccessPolicy
from bot.conversation.plan import MeetingPlan, PlanContext, inputs_from_options
from bot.devtools.sandbox import Sandbox
from bot.settings import Settings, SettingsError
from cards import inputs as ids
from tests.conftest import CATALOG, sandbox_settings, serve
from tests.support.plans import plan_or_problems

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def typed(**options: str) -> MeetingPlan | list:
    """What ``meet Consultation key=value ...`` makes: a plan, or the problems."""
    inputs = inputs_from_options("Consultation", options, CATALOG)
    return plan_or_problems(inputs, PlanContext(CATALOG, PARIS, NOW, group_space=False))


def accepted_as_default(value: str) -> bool:
    try:
        Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "DEFAULT_VALID_FOR": value})
    except SettingsError as error:
        assert str(error).startswith("DEFAULT_VALID_FOR")
        return False
    return True


@pytest.mark.parametrize("value", ["3h", "3d", "90m", "45 minutes", "5m", "30d", "2h",
                                   "4m", "31d", "3x", "0h", "forever"])
def test_default_valid_for_accepts_what_the_chat_accepts(value: str) -> None:
    assert accepted_as_default(value) is isinstance(typed(valid=value), MeetingPlan)


def test_the_chat_takes_3h_and_3d_and_so_does_the_setting() -> None:
    assert accepted_as_default("3h") and accepted_as_default("3d")


@pytest.mark.parametrize(("clock", "hour", "minute"),
                         [("9:00", 9, 0), ("09:00", 9, 0), ("7:45", 7, 45), ("23:59", 23, 59)])
def test_a_time_typed_with_one_digit_of_hour_is_read(clock: str, hour: int, minute: int) -> None:
    plan = typed(date="2026-03-02", time=clock)
    assert isinstance(plan, MeetingPlan), plan
    assert plan.start == datetime(2026, 3, 2, hour, minute, tzinfo=PARIS)


@pytest.mark.parametrize("clock", ["9:0", "24:00", "9:60", "nine", "9h"])
def test_a_time_that_is_no_time_is_still_a_named_problem(clock: str) -> None:
    problems = typed(date="2026-03-02", time=clock)
    assert isinstance(problems, list) and problems, problems


def test_worker_processes_below_zero_says_zero_or_more() -> None:
    with pytest.raises(SettingsError, match=r"^WORKER_PROCESSES must be 0 or more\.$"):
        Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "WORKER_PROCESSES": "-1"})


def test_max_body_bytes_has_a_floor_a_real_webhook_fits_in() -> None:
    """A webhook from Webex is about 1 KB (the sandbox's, with a 200-character target URL,
    1259 bytes): below 4096 the setting is refused, saying why."""
    with pytest.raises(SettingsError, match=r"^MAX_BODY_BYTES must be 4096 or more: a webhook"):
        Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "MAX_BODY_BYTES": "1000"})
    floor = Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "MAX_BODY_BYTES": "4096"})
    assert floor.max_body_bytes == 4096


def card_values(card: object) -> dict[str, str]:
    """What Webex submits for a card nobody changed: each input's preset value."""
    found: dict[str, str] = {}
    if isinstance(card, dict):
        if str(card.get("type", "")).startswith("Input.") and "value" in card:
            found[card["id"]] = str(card["value"])  # Webex sends every input as text
        for value in card.values():
            found.update(card_values(value))
    elif isinstance(card, list):
        for item in card:
            found.update(card_values(item))
    return found


def test_the_form_preselects_default_valid_for_even_one_of_its_own(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """DEFAULT_VALID_FOR=3h: the form offers and preselects 3h (none of its usual choices), and
    the links of a form sent as it came last 3 hours."""
    alice = sandbox.add_person("alice@clinic.example.com", "Alice", timezone="Europe/Paris")
    dm = sandbox.direct_room(alice)
    settings = sandbox_settings(sandbox, tmp_path, default_valid_for="3h",
                                access=AccessPolicy(allow_everyone=True))
    for bot in serve(sandbox, settings):
        sandbox.post_message(alice, dm, "new")
        [form] = bot.wait_for_bot_messages(dm, 1)
        preset = card_values(form["attachments"][0]["content"])
        assert preset[ids.VALID_FOR] == "3h"
        bot.idle()  # the form is recorded just after Webex shows it; a person is not faster
        sandbox.submit_card(alice, form["id"], {**preset, ids.ACTION: ids.ACTION_CREATE,
                                                ids.SUBJECT: "Follow-up"})
        bot.wait_for_bot_messages(dm, 2)
        [request] = sandbox.requests_matching("POST", "/api/v2/joseencrypt")
        claims = request.json["jwt"]
        assert claims["exp"] - claims.get("nbf", claims["exp"] - 3 * 3600) == 3 * 3600
