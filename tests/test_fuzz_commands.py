"""Fuzzing what people type: mention stripping, the command parser and the quick path's options.

``COMMANDS.parse(strip_mention(...))`` must never raise, and ``inputs_from_options`` raise only the
problems (InvalidRequest), whatever the text or html (tags, entities, unbalanced quotes for shlex,
any unicode); the bot's own mention is always removed and nobody else's; and the quick path
answers with links or with what to fix.
"""

from __future__ import annotations

import html as html_lib
import shlex
import string
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.conversation.commands import person_uuid, strip_mention
from bot.conversation.plan import (
    LABELS,
    QUICK_OPTIONS,
    MeetingPlan,
    PlanContext,
)
from bot.conversation.router import COMMANDS
from bot.conversation.timewindow import zone
from bot.devtools.sandbox import Sandbox
from bot.errors import FieldError
from tests.conftest import CATALOG, RunningBot, report_fuzz_cases, sandbox_settings, serve
from tests.support.plans import inputs_or_problems, plan_or_problems
from tests.test_fuzz_submits import check_outcome

TRIED: Counter[str] = Counter()
FAST = {"deadline": None, "database": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
BOT_ID = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM0NTY3OC1hYmNkLTRlZmEtOGJjZC0xMjM0NTY3ODlhYmM"
OTHER_ID = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS84NzY1NDMyMS1hYmNkLTRlZmEtOGJjZC0xMjM0NTY3ODlhYmM"
NAMES = ("Instant Connect", "Instant")


@pytest.fixture(scope="module", autouse=True)
def cases_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, print how many cases each fuzz target tried."""
    yield
    report_fuzz_cases(request, "command", TRIED)


# Strategies ---------------------------------------------------------------------------------


def mention(object_id: str, name: str = "Instant", quote: str = '"') -> str:
    """A mention as Webex writes it in a message's html."""
    return (f"<spark-mention data-object-type={quote}person{quote} "
            f"data-object-id={quote}{object_id}{quote}>{name}</spark-mention>")


FRAGMENTS = (
    mention(BOT_ID), mention(person_uuid(BOT_ID), quote="'"), mention(OTHER_ID, "Bob"),
    "<spark-mention data-object-id=\"", "<spark-mention ", "</spark-mention>", "<p>", "</p>",
    "<br/>", "<", ">", "<<>>", "<a href='x'>", "&amp;", "&lt;b&gt;", "&#0;", "&#xD800;",
    "&#99999999;", "&nbsp;", "&", '"', "'", "\\", "\\'", '"unbalanced', "'also", "meet ", "MEET:",
    "help", "?", "/new", "@Instant", "guests=3", "hosts=-1", "valid=4h", "device=\"Exam Room 1",
    "device='Cart 7'", "type=hc", "=", "a=", "=b", "colour=blue", "\u202e", "\u200b", "\x00",
    "🙂", "مرحبا", "\n", "\t", " ",
)
pieces = st.lists(st.text(max_size=15) | st.sampled_from(FRAGMENTS), max_size=25).map("".join)
bot_ids = st.sampled_from([BOT_ID, person_uuid(BOT_ID), ""]) | st.text(max_size=30)
names = st.tuples(st.text(max_size=20), st.text(max_size=10)) | st.just(NAMES)
COMMAND_NAMES = COMMANDS.names


def check_command_and_options(text: str) -> None:
    """Parse; a ``meet`` becomes form inputs or named option problems, then a plan or problems."""
    command = COMMANDS.parse(text)
    assert command.name in COMMAND_NAMES
    if command.name != "meet":
        assert (command.subject, command.options) == ("", {})
        return
    assert command.subject
    assert all(key.isascii() and key.isalpha() and key.islower() for key in command.options)
    inputs = inputs_or_problems(command.subject, command.options, CATALOG)
    if isinstance(inputs, list):
        assert inputs and all(isinstance(error, FieldError) for error in inputs)
        assert all(error.field.startswith("Option ") for error in inputs)
        return
    assert set(inputs) <= set(LABELS)
    assert all(isinstance(value, str) for value in inputs.values())
    now = datetime.now(UTC)
    check_outcome(plan_or_problems(inputs, PlanContext(CATALOG, UTC, now, False)), now, "k")


# Properties ---------------------------------------------------------------------------------


@settings(max_examples=2000, **FAST)
@given(html=pieces | st.just(""), text=pieces, bot_id=bot_ids, bot_names=names)
def test_any_message_parses_without_raising(
    html: str, text: str, bot_id: str, bot_names: tuple[str, str]
) -> None:
    """Whatever the html, text, bot id and names: a command, and options that never raise."""
    TRIED["parse(strip_mention(html, text))"] += 1
    stripped = strip_mention(html, text, bot_id, bot_names)
    assert stripped == " ".join(stripped.split())
    check_command_and_options(stripped)


@settings(max_examples=1000, **FAST)
@given(subject=st.text(max_size=30), options=st.dictionaries(
    st.sampled_from(sorted(QUICK_OPTIONS)) | st.text(string.ascii_letters, min_size=1,
                                                     max_size=12),
    st.text(max_size=40) | st.sampled_from(["3", "-1", "4h", "Exam Room 1", "Cart 7,lab@x.org",
                                            "hc", "no", "2026-12-01", "09:30", ",,,"]),
    max_size=6))
def test_inputs_from_any_options_never_raise(subject: str, options: dict[str, str]) -> None:
    """Any option names and values: form inputs or one problem per unknown option."""
    TRIED["inputs_from_options"] += 1
    outcome = inputs_or_problems(subject, options, CATALOG)
    unknown = set(options) - set(QUICK_OPTIONS)
    if unknown:
        assert isinstance(outcome, list)
        assert {error.field for error in outcome} == {f"Option {name}" for name in unknown}
    else:
        assert isinstance(outcome, dict) and set(outcome) <= set(LABELS)


@settings(max_examples=500, **FAST)
@given(text=st.text(max_size=60), form=st.sampled_from([BOT_ID, person_uuid(BOT_ID)]),
       quote=st.sampled_from(["'", '"']))
def test_the_bots_own_mention_is_always_removed(text: str, form: str, quote: str) -> None:
    """By base64 id or raw UUID, the bot's mention goes and the rest reads as typed."""
    TRIED["own mention removed"] += 1
    html = f"<p>{mention(form, quote=quote)} {html_lib.escape(text)}</p>"
    assert strip_mention(html, f"Instant {text}", BOT_ID, NAMES) == " ".join(text.split())


@settings(max_examples=500, **FAST)
@given(name=st.text(min_size=1, max_size=20).filter(str.strip), text=st.text(max_size=40))
def test_someone_elses_mention_keeps_their_name(name: str, text: str) -> None:
    """A mention of another person is text of the message, not the bot's address."""
    TRIED["other mention kept"] += 1
    html = (f"<p>{mention(BOT_ID)} {mention(OTHER_ID, html_lib.escape(name))} "
            f"{html_lib.escape(text)}</p>")
    assert " ".join(name.split()) in strip_mention(html, "", BOT_ID, NAMES)


ADVERSARIAL = {
    "unclosed attribute": '<spark-mention data-object-id="' * 2000,
    "unclosed tag with id": '<spark-mention data-object-id="x" ' * 2000,
    "unclosed mentions": '<spark-mention data-object-id="x">' * 2000,
    "tags inside a mention": '<spark-mention data-object-id="x">' + "a <b>" * 10_000,
}


@pytest.mark.parametrize("html", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_pathological_html_is_stripped_quickly(html: str) -> None:
    """Some 60 kB of unclosed mentions: milliseconds, not the seconds a backtracking regex took."""
    started = time.perf_counter()
    COMMANDS.parse(strip_mention(html, "", BOT_ID, NAMES))
    assert time.perf_counter() - started < 1.0


# The quick path end to end ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """One bot for the module, with no per-person limit in the way."""
    with Sandbox(seed=31) as box:
        yield from serve(box, sandbox_settings(box, tmp_path_factory.mktemp("command-fuzz"),
                                               meetings_per_person=1_000_000))


@pytest.fixture(scope="module")
def dm(bot: RunningBot) -> dict[str, Any]:
    """A person in Paris and her 1:1 space with the bot."""
    person = bot.sandbox.add_person("zoe@clinic.example.com", "Zoe Nurse", timezone="Europe/Paris")
    return {"person": person, "room": bot.sandbox.direct_room(person)}


def say(bot: RunningBot, dm: dict[str, Any], text: str) -> list[str]:
    """Send ``text`` in the 1:1 space; every bot message it caused."""
    before = {m["id"] for m in bot.bot_messages(dm["room"])}
    bot.sandbox.post_message(dm["person"], dm["room"], text)
    bot.idle()
    return [m["markdown"] for m in bot.bot_messages(dm["room"]) if m["id"] not in before]


quick_options = st.dictionaries(
    st.sampled_from(sorted(QUICK_OPTIONS)) | st.text(string.ascii_lowercase, min_size=1,
                                                     max_size=8),
    st.sampled_from(["1", "3", "0", "26", "-1", "x", "4h", "7d", "90d", "hc", "gen", "yes", "maybe",
                     "Exam Room 1", "lab@clinic.example.com", "not a device", "2027-01-05",
                     "tomorrow", "09:30", "25:00", "30m", "13h", ""]),
    max_size=4,
)


@settings(max_examples=25, **FAST)
@given(subject=st.text(string.ascii_letters + string.digits + " -'<>&*_[]()", min_size=1,
                       max_size=30).filter(str.strip), options=quick_options)
def test_quick_path_answers_with_links_or_what_to_fix(
    bot: RunningBot, dm: dict[str, Any], subject: str, options: dict[str, str]
) -> None:
    """``meet <subject> key=value ...``: links, or the options named; never an apology."""
    TRIED["end to end, meet"] += 1
    words = " ".join(f"{key}={shlex.quote(value)}" for key, value in options.items())
    text = f"meet {shlex.quote(subject)} {words}"
    calls_before = len(bot.sandbox.requests_matching("POST", "/api/v2/joseencrypt"))
    command = COMMANDS.parse(" ".join(text.split()))
    inputs = inputs_or_problems(command.subject, command.options, CATALOG)
    context = PlanContext(CATALOG, zone("Europe/Paris", "UTC"), datetime.now(UTC), False)
    expected = inputs if isinstance(inputs, list) else plan_or_problems(inputs, context)

    said = say(bot, dm, text)

    calls = bot.sandbox.requests_matching("POST", "/api/v2/joseencrypt")[calls_before:]
    assert said and not any("Sorry" in line or "Traceback" in line for line in said), said
    if command.name != "meet":
        return  # a subject that is only quotes is the form, already covered elsewhere
    if isinstance(expected, MeetingPlan):
        TRIED["end to end, meet (links)"] += 1
        assert [call.status for call in calls] == [200]
        assert "Host 1" in said[0] or "Guest 1" in said[0]
    else:
        assert calls == []
        [reply] = said
        assert reply.startswith("Please fix")
        assert all(f"**{error.field}**" in reply for error in expected[:5])


FLOODS = {
    "300 unknown options": "meet Consultation " + " ".join(
        f"{a}{b}=1" for a in string.ascii_lowercase for b in string.ascii_lowercase[:12]),
    "a 6000-letter option": "meet Consultation " + "x" * 6000 + "=1",
    "1000 bad devices": "meet Consultation device=" + ",".join(f"d{n}" for n in range(1000)),
}


@pytest.mark.parametrize("text", FLOODS.values(), ids=FLOODS.keys())
def test_a_flood_of_bad_options_gets_one_readable_reply(
    bot: RunningBot, dm: dict[str, Any], text: str
) -> None:
    """However many problems, the reply fits one Webex message and names an option."""
    [reply] = say(bot, dm, text)
    assert reply.startswith("Please fix")
    assert "**Option " in reply or "**Other video devices (SIP addresses)**" in reply
