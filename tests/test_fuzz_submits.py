"""Fuzzing card submits: any value in any input gives a plan the broker accepts or named problems.

At the plan level (fast, many cases) ``plan_from_inputs`` returns a plan whose request passes
both the bot's own checks and the sandbox broker's validator, or raises problems (InvalidRequest)
that each name a field as the form labels it, and nothing else. End to end (fewer cases, through
one running bot) the person always gets links or a message saying what to fix, and nothing
invalid reaches the broker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.conversation.plan import LABELS, MeetingPlan, PlanContext
from bot.conversation.timewindow import zone
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.broker import parse_link_request
from bot.devtools.sandbox.responses import ApiError
from bot.errors import FieldError
from bot.limits import MAX_LINKS
from cards import inputs as ids
from cards.form import meeting_form
from tests.conftest import CATALOG, RunningBot, report_fuzz_cases, sandbox_settings, serve
from tests.support.guests import ready_channels
from tests.support.plans import plan_or_problems

TRIED: Counter[str] = Counter()
FAST = {"deadline": None, "database": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago",
         "Asia/Kathmandu", "Australia/Lord_Howe")


@pytest.fixture(scope="module", autouse=True)
def cases_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, print how many cases each fuzz target tried."""
    yield
    report_fuzz_cases(request, "submit", TRIED)


# Strategies ---------------------------------------------------------------------------------

HOSTILE = (
    "", " ", "\t\n", "'; DROP TABLE meetings; --", "\" OR 1=1 --", "<script>alert(1)</script>",
    "{{7*7}}", "${7*7}", "%s%s%n", "[click me](https://evil.example/phish)",
    "![x](https://evil.example/x.png)", "**bold** _it_ `code`", "<@all>", "../../etc/passwd",
    "\u202eevil\u202c", "\u200b", "مرحبا بالعالم", "שלום", "🙂🎉👩‍⚕️", "\x00\x07\x1b[31m",
    "\ud800", "-1", "-0", "1e3", "1e400", "0x10", "nan", "inf", "2.5", "\uff11\uff12", "\u0663",
    "1_0", "true", "false", "yes", "ON", "gen", "hc", "15m", "0m", "31d", "9999h",
    "2026-02-30", "0001-01-01", "9999-12-31", "2026-W01-1", "25:00", "09:30:00+05:00",
    "a@b", "sip:room@clinic.example.com", "room@clinic.example.com\nlab@clinic.example.com",
)
json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=6,
)
junk = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=80),
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.integers(121, 20_000).map(lambda n: ("Consult " * n)[:n]),
    st.integers(2, 3000).map(lambda n: " ".join(f"bad{i}" for i in range(n))),
    json_junk,
)
today = date.today()
CHANNELS = tuple(ready_channels())
sip_addresses = st.from_regex(r"(sips?:)?[a-z0-9._-]{1,12}@[a-z0-9-]{1,10}\.(com|example|org)",
                              fullmatch=True)
# What people type into a subject: visible text (no controls, format characters, private-use,
# surrogates or code points this Python cannot name; variation selectors only where they belong)
# and the sequences that need joiners, selectors, tags or direction marks.
SCOTLAND = "🏴" + "".join(chr(0xE0000 + ord(letter)) for letter in "gbsct") + "\U000e007f"
TYPED_SEQUENCES = (
    "👩\u200d⚕️", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", SCOTLAND, "❤️\u200d🔥", "#️⃣", "👍🏽", "🇫🇷",
    "می" "\u200c" "خواهم", "क्\u200dष", "ന്\u200d", "\u200fמרפאה 3", "\u061c" "١٢ مريض",
)
VARIATION_SELECTORS = "".join(map(chr, [*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]))
visible_text = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Co", "Cs", "Cn"),
                                     blacklist_characters=VARIATION_SELECTORS), max_size=25)
GOOD: dict[str, st.SearchStrategy[Any]] = {
    ids.SUBJECT: st.lists(visible_text | st.sampled_from(TYPED_SEQUENCES), min_size=1,
                          max_size=5).map("".join).filter(bool),
    ids.HOSTS: st.integers(-2, 27).map(str),
    ids.GUESTS: st.integers(-2, 27).map(str),
    ids.DEVICES: st.lists(st.sampled_from([d.sip_uri for d in CATALOG]), max_size=3).map(
        ",".join),
    ids.EXTRA_DEVICES: st.tuples(st.lists(sip_addresses, max_size=27),
                                 st.sampled_from([",", " ", "\n", "; "])).map(
        lambda parts: parts[1].join(parts[0])),
    ids.SHORT_LINKS: st.sampled_from([ids.TOGGLE_ON, ids.TOGGLE_OFF]),
    ids.VERTICAL: st.sampled_from([*ids.VERTICAL_CHOICES, "GEN", "Hc"]),
    ids.HOST_LOGIN: st.sampled_from([ids.TOGGLE_ON, ids.TOGGLE_OFF]),
    ids.START_DATE: st.integers(-3, 400).map(lambda days: (today + timedelta(days)).isoformat()),
    ids.START_TIME: st.times().map(lambda t: t.strftime("%H:%M")),
    ids.VALID_FOR: st.sampled_from([*ids.VALID_FOR_CHOICES, "5m", "4m", "30d", "31d", "90 min"]),
    ids.DURATION: st.sampled_from([*ids.DURATION_CHOICES, "5m", "4m", "12h", "13h", "1d"]),
    ids.PRIVATE_HOST_LINKS: st.sampled_from([ids.TOGGLE_ON, ids.TOGGLE_OFF]),
    ids.GUEST_CONTACTS: st.lists(st.sampled_from(
        ["zoe@example.org", "Zoe@Example.org", "+33 6 12 34 56 78", "06 12 34 56 78", "bad@",
         "+1 202 555 0123", "+33 1 42 68 53 00"]), max_size=12).map(", ".join),
    ids.GUEST_NOTE: visible_text,
    ids.GUEST_LANGUAGE: st.sampled_from([*ids.GUEST_LANGUAGES, "ES", "pt-BR", "xx"]),
    ids.REMIND_BEFORE: st.sampled_from([*ids.REMIND_CHOICES, "30m", "NONE", "0", "8d", "soon"]),
}
FORM_IDS = tuple(GOOD)  # the form's inputs; LABELS names those of other cards too
# Mostly plausible values, so that both plans and problems are explored, with junk anywhere.
form_inputs = st.fixed_dictionaries(
    {}, optional={name: st.one_of(GOOD[name], GOOD[name], junk) for name in FORM_IDS}
)
SANE: dict[str, st.SearchStrategy[Any]] = {
    **GOOD,
    ids.SUBJECT: GOOD[ids.SUBJECT].map(lambda text: " ".join(text.split())).filter(
        lambda text: 0 < len(text) <= ids.MAX_SUBJECT_LENGTH),
    ids.HOSTS: st.just("0"),  # replaced below by a pair that adds up to 1..25
    ids.GUESTS: st.just("1"),
    ids.EXTRA_DEVICES: st.lists(sip_addresses, max_size=20).map(" ".join),
    ids.VERTICAL: st.sampled_from(list(ids.VERTICAL_CHOICES)),
    # From the day after tomorrow: a zone 14 hours ahead of this machine is already in tomorrow.
    ids.START_DATE: st.integers(2, 300).map(lambda days: (today + timedelta(days)).isoformat()),
    ids.VALID_FOR: st.sampled_from(list(ids.VALID_FOR_CHOICES)),
    ids.DURATION: st.sampled_from(list(ids.DURATION_CHOICES)),
    # Contacts are fuzzed with any inputs; the guests they add are tested in test_plan.
    ids.GUEST_CONTACTS: st.just(""),
    ids.GUEST_NOTE: visible_text.map(str.strip),
    ids.GUEST_LANGUAGE: st.sampled_from(list(ids.GUEST_LANGUAGES)),
    ids.REMIND_BEFORE: st.sampled_from(list(ids.REMIND_CHOICES)),
}
link_counts = st.integers(1, MAX_LINKS).flatmap(
    lambda total: st.integers(0, total).map(lambda hosts: (str(hosts), str(total - hosts))))
zones = st.sampled_from(ZONES).map(ZoneInfo)
defaults = st.sampled_from(list(ids.VALID_FOR_CHOICES))


@st.composite
def sane_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """What the form itself lets a person submit: every value in range."""
    inputs = draw(st.fixed_dictionaries({name: SANE[name] for name in FORM_IDS}))
    inputs[ids.HOSTS], inputs[ids.GUESTS] = draw(link_counts)
    return inputs


@st.composite
def nearly_sane_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A sane submit with one field forged: missing, or any junk."""
    inputs = draw(sane_inputs())
    name = draw(st.sampled_from(FORM_IDS))
    if draw(st.booleans()):
        del inputs[name]
    else:
        inputs[name] = draw(junk)
    return inputs


# A third each: sane, one field forged, anything at all.
submits = st.one_of(sane_inputs(), nearly_sane_inputs(), form_inputs)


def form_labels() -> set[str]:
    """Every input id of the meeting form as posted in a group space (the most inputs)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        """Collect input ids below ``node``."""
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input."):
                found.add(node["id"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    ways = [channel.way for channel in CHANNELS]
    walk(meeting_form(CATALOG, group_space=True, timezone_name="UTC", channels=ways))
    return found


def check_outcome(outcome: MeetingPlan | list[FieldError], now: datetime, key: str) -> None:
    """A plan the bot and the broker both accept, or named problems (never an empty list)."""
    if isinstance(outcome, MeetingPlan):
        request = outcome.request(key, now.timestamp())
        assert request.problems(now.timestamp()) == []
        try:
            parse_link_request(request.to_body())
        except ApiError as error:  # pragma: no cover - the failure message is the point
            pytest.fail(f"the broker refuses what the bot would send: {error.message}")
        assert 1 <= outcome.hosts + outcome.guests <= MAX_LINKS
    else:
        assert outcome, "an empty problem list is neither a plan nor a reason"
        assert all(isinstance(error, FieldError) for error in outcome)
        assert {error.field for error in outcome} <= set(LABELS.values())
        assert all(error.message.strip() for error in outcome)


# Plan level ---------------------------------------------------------------------------------


def test_the_fuzzed_ids_are_every_input_of_the_form() -> None:
    """The strategies cover exactly the inputs the form has, so a new input is fuzzed too."""
    assert set(FORM_IDS) == form_labels()


@settings(max_examples=1000, **FAST)
@given(inputs=submits, tz=zones, group=st.booleans(), default=defaults,
       key=st.text(min_size=1, max_size=40))
def test_plan_from_any_inputs_is_a_valid_request_or_named_problems(
    inputs: dict[str, Any], tz: ZoneInfo, group: bool, default: str, key: str
) -> None:
    """Never raises; a plan passes both validators, problems name fields of the form."""
    TRIED["plan, any inputs"] += 1
    now = datetime.now(UTC)
    outcome = plan_or_problems(inputs, PlanContext(CATALOG, tz, now, group, default,
                                                        CHANNELS, "FR"))
    TRIED["plan, any inputs (a plan)"] += isinstance(outcome, MeetingPlan)
    check_outcome(outcome, now, key)


@settings(max_examples=300, **FAST)
@given(inputs=sane_inputs(), tz=zones, group=st.booleans(), default=defaults)
def test_sane_inputs_always_make_a_plan(
    inputs: dict[str, Any], tz: ZoneInfo, group: bool, default: str
) -> None:
    """What the form itself lets people submit is always planned, never refused."""
    TRIED["plan, sane inputs"] += 1
    now = datetime.now(UTC)
    outcome = plan_or_problems(inputs, PlanContext(CATALOG, tz, now, group, default,
                                                        CHANNELS, "FR"))
    assert isinstance(outcome, MeetingPlan), outcome
    check_outcome(outcome, now, "key")
    assert (outcome.hosts, outcome.guests) == (int(inputs[ids.HOSTS]), int(inputs[ids.GUESTS]))


# End to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """One bot for the module; no per-person limit gets in the way of many meetings."""
    with Sandbox(seed=29) as box:
        settings_ = sandbox_settings(box, tmp_path_factory.mktemp("submit-fuzz"),
                                     meetings_per_person=1_000_000)
        yield from serve(box, settings_)


@pytest.fixture(scope="module")
def clinic(bot: RunningBot) -> dict[str, Any]:
    """A group space with one person in New York."""
    alice = bot.sandbox.add_person("alice@clinic.example.com", "Alice Doctor",
                                   timezone="America/New_York")
    return {"person": alice, "room": bot.sandbox.add_room("Clinic", members=[alice])}


def current_form(bot: RunningBot, clinic: dict[str, Any]) -> dict[str, Any]:
    """The live form in the space, asking for a new one once the last was used."""
    forms = [m for m in bot.bot_messages(clinic["room"])
             if ids.ACTION_CREATE in str(m.get("attachments", ""))]
    if forms:
        return forms[-1]
    bot.sandbox.post_message(clinic["person"], clinic["room"], "new")
    bot.idle()
    return current_form(bot, clinic)


def everything_the_bot_said(bot: RunningBot, rooms: list[dict[str, Any]]) -> dict[str, str]:
    """The markdown of every live bot message in these spaces, by message id."""
    return {m["id"]: m.get("markdown") or m.get("text") or "" for room in rooms
            for m in bot.bot_messages(room)}


@settings(max_examples=40, **FAST)
@given(inputs=submits)
def test_any_submit_gets_links_or_what_to_fix_and_the_broker_sees_only_valid_requests(
    bot: RunningBot, clinic: dict[str, Any], inputs: dict[str, Any]
) -> None:
    """Through the running bot: links or the named problems, no apology, no traceback."""
    TRIED["end to end, submits"] += 1
    sandbox, person = bot.sandbox, clinic["person"]
    rooms = [clinic["room"], sandbox.direct_room(person)]
    form = current_form(bot, clinic)
    said_before = everything_the_bot_said(bot, rooms)
    calls_before = len(sandbox.requests_matching("POST", "/api/v2/joseencrypt"))
    context = PlanContext(CATALOG, zone("America/New_York", "UTC"), datetime.now(UTC), True)
    expected = plan_or_problems(inputs, context)

    sandbox.submit_card(person, form["id"], {ids.ACTION: ids.ACTION_CREATE, **inputs})
    bot.idle()

    said = [text for message_id, text in everything_the_bot_said(bot, rooms).items()
            if message_id not in said_before]
    calls = sandbox.requests_matching("POST", "/api/v2/joseencrypt")[calls_before:]
    assert not any("Sorry, I could not finish that" in text for text in said), said
    assert not any("Traceback" in text or 'File "' in text for text in said), said
    if isinstance(expected, MeetingPlan):
        TRIED["end to end, submits (links)"] += 1
        assert [call.status for call in calls] == [200]
        assert any("Guest 1" in text or "Host 1" in text for text in said), said
        assert sandbox.message(form["id"])["deleted"]
    else:
        assert calls == []
        [reply] = said
        assert reply.startswith("Please fix these and submit the form again:")
        assert all(f"**{error.field}**" in reply for error in expected[:5])
        assert not sandbox.message(form["id"]).get("deleted")


@pytest.mark.parametrize(
    ("name", "value"),
    [(ids.EXTRA_DEVICES, " ".join(f"not-an-address-{n}" for n in range(2000))),
     (ids.DEVICES, ",".join(f"unknown-{n}@nowhere.example" for n in range(800))),
     (ids.SUBJECT, "x" * 100_000),
     (ids.EXTRA_DEVICES, "\ud800@example.com lab\udfff")],
    ids=["2000 bad addresses", "800 unknown devices", "100k subject", "lone surrogates"],
)
def test_a_flood_of_bad_values_still_gets_a_readable_answer(
    bot: RunningBot, clinic: dict[str, Any], name: str, value: str
) -> None:
    """However many problems (or odd characters), one Webex message names the field."""
    sandbox, person = bot.sandbox, clinic["person"]
    form = current_form(bot, clinic)
    before = len(bot.bot_messages(clinic["room"]))
    sandbox.submit_card(person, form["id"], {ids.ACTION: ids.ACTION_CREATE,
                                             ids.SUBJECT: "Consultation", name: value})
    bot.idle()
    [reply] = [m["markdown"] for m in bot.bot_messages(clinic["room"])[before:]]
    assert reply.startswith("Please fix these")
    assert f"**{LABELS[name]}**" in reply
