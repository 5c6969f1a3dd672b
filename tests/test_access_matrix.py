"""Who may use the bot, through the running bot: every access rule, for messages and card submits.

Each policy is read from the environment as a deployment would set it. Allowed people get the
form and links; refused people get a polite reply and nothing else (no form, no broker call);
other bots get no reply at all. Also: forms the bot never posted, forged webhook data, an
action that names another space, and the per-person meeting limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests

from bot.conversation.access import AccessPolicy
from bot.devtools.sandbox import Sandbox
from bot.settings import Settings
from cards import inputs as ids
from tests.conftest import RunningBot, sandbox_settings, serve

POLITE = "Sorry, I can only make meetings for people my administrator has allowed."
PARTNER_ORG, ELSEWHERE_ORG, AFFILIATE_ORG, EVIL_ORG = (
    "PARTNER-ORG", "ELSEWHERE-ORG", "AFFILIATE-ORG", "EVIL-ORG")
PEOPLE = {  # name: (email, organisation; None is the bot's own)
    "alice": ("alice@clinic.example.com", None),
    "bob": ("bob@partner.example.org", PARTNER_ORG),
    "carol": ("carol@elsewhere.example.net", ELSEWHERE_ORG),
    "dave": ("dave@elsewhere.example.net", ELSEWHERE_ORG),
    "erin": ("erin@affiliate.example.com", AFFILIATE_ORG),
    "mallory": ("mallory@evil.example.com", EVIL_ORG),
    "robot": ("robot@clinic.example.com", None),  # another bot of the bot's own organisation
}
served = contextlib.contextmanager(serve)


@dataclass(frozen=True)
class Case:
    """An access configuration as environment variables, and who it lets in."""

    env: Callable[[dict[str, dict[str, Any]], str], dict[str, str]]
    allowed: frozenset[str]


CASES = {
    "default: own organisation only": Case(lambda people, org: {}, frozenset({"alice"})),
    "by domain": Case(lambda people, org: {"ALLOWED_DOMAINS": "Partner.Example.org"},
                      frozenset({"bob"})),
    "by email": Case(lambda people, org: {"ALLOWED_PEOPLE": "CAROL@elsewhere.example.net"},
                     frozenset({"carol"})),
    "by person id": Case(lambda people, org: {"ALLOWED_PEOPLE": people["dave"]["id"]},
                         frozenset({"dave"})),
    "by org id": Case(lambda people, org: {"ALLOWED_ORG_IDS": AFFILIATE_ORG},
                      frozenset({"erin"})),
    "lists replace the default": Case(
        lambda people, org: {"ALLOWED_DOMAINS": "partner.example.org",
                             "ALLOWED_ORG_IDS": f"{AFFILIATE_ORG}, {org}"},
        frozenset({"alice", "bob", "erin"})),
    "everyone": Case(lambda people, org: {"ALLOW_EVERYONE": "true"},
                     frozenset(PEOPLE) - {"robot"}),
}


def add_people(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Everyone in PEOPLE; the robot's profile says it is a bot, as Webex's would."""
    people = {name: sandbox.add_person(email, name.title(), org_id=org)
              for name, (email, org) in PEOPLE.items()}
    robot = people["robot"]
    # The sandbox's public API makes only people; its fault injection answers this one's
    # profile lookup the way Webex describes a bot account.
    sandbox.fail("GET", f"/v1/people/{robot['id']}", status=200, body={**robot, "type": "bot"})
    return people


def policy(env: dict[str, str]) -> AccessPolicy:
    """The access policy exactly as a deployment's environment would configure it."""
    return Settings.from_env({"WEBEX_BOT_TOKEN": "unused", **env}).access


def broker_calls(sandbox: Sandbox) -> int:
    """How many times the broker has been asked for links."""
    return len(sandbox.requests_matching("POST", "/api/v2/joseencrypt"))


def new_messages(bot: RunningBot, room: dict[str, Any], act: Callable[[], object]) -> list[dict]:
    """Do ``act`` and return the bot messages it caused in ``room``."""
    before = {m["id"] for m in bot.bot_messages(room)}
    act()
    bot.idle()
    return [m for m in bot.bot_messages(room) if m["id"] not in before]


def is_form(message: dict[str, Any]) -> bool:
    """Whether the message carries the meeting form."""
    return ids.ACTION_CREATE in str(message.get("attachments", ""))


def create_inputs(subject: str = "Consultation") -> dict[str, str]:
    """A valid submit of the form."""
    return {ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: subject, ids.HOSTS: "1", ids.GUESTS: "1"}


def post_form(bot: RunningBot, by: dict[str, Any], room: dict[str, Any]) -> dict[str, Any]:
    """Have an allowed person ask for the form in ``room``; the form message."""
    [form] = new_messages(bot, room, lambda: bot.sandbox.post_message(by, room, "new"))
    assert is_form(form)
    return form


def assert_refused(replies: list[dict[str, Any]], name: str) -> None:
    """People get one polite reply without a card; a bot gets nothing at all."""
    if name == "robot":
        assert replies == []
        return
    [reply] = replies
    assert reply["markdown"].startswith(POLITE)
    assert "attachments" not in reply


# The matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_access_matrix_for_messages_and_submits(
    sandbox: Sandbox, tmp_path: Any, case: Case
) -> None:
    """Every person against every policy: form, quick links and submits, or a polite refusal."""
    people = add_people(sandbox)
    access = policy(case.env(people, sandbox.org_id))
    insider = people[sorted(case.allowed)[0]]
    shared = sandbox.add_room("Shared", members=list(people.values()))
    with served(sandbox, sandbox_settings(sandbox, tmp_path, access=access)) as bot:
        for name, person in people.items():
            check_person(bot, name, person, name in case.allowed, insider, shared)


def check_person(bot: RunningBot, name: str, person: dict[str, Any], allowed: bool,
                 insider: dict[str, Any], shared: dict[str, Any]) -> None:
    """One row of the matrix: "new" and "meet" in a 1:1 space, and a press of a shared form."""
    sandbox = bot.sandbox
    dm = sandbox.direct_room(person)
    asked = new_messages(bot, dm, lambda: sandbox.post_message(person, dm, "new"))
    if allowed:
        assert [is_form(m) for m in asked] == [True], name
    else:
        assert_refused(asked, name)

    calls = broker_calls(sandbox)
    quick = new_messages(bot, dm, lambda: sandbox.post_message(person, dm, "meet Plans"))
    assert broker_calls(sandbox) == calls + allowed, name
    if allowed:
        assert "Guest 1" in quick[0]["markdown"], name
    else:
        assert_refused(quick, name)

    form = post_form(bot, insider, shared)
    calls = broker_calls(sandbox)
    pressed = new_messages(bot, shared, lambda: sandbox.submit_card(
        person, form["id"], create_inputs()))
    assert broker_calls(sandbox) == calls + allowed, name
    assert bool(sandbox.message(form["id"]).get("deleted")) == allowed, name
    if allowed:
        assert any("Guest 1" in m["markdown"] for m in pressed), name
    else:
        assert_refused(pressed, name)


def test_the_robot_really_is_seen_as_a_bot(sandbox: Sandbox) -> None:
    """The matrix's bot account: Webex (the sandbox) describes it as a bot to whoever asks."""
    people = add_people(sandbox)
    profile = requests.get(f"{sandbox.webex_base_url}people/{people['robot']['id']}",
                           headers={"Authorization": f"Bearer {sandbox.bot_token}"}, timeout=10)
    assert profile.json()["type"] == "bot"


# Forms the bot did not post, forged data ----------------------------------------------------


@pytest.fixture
def clinic(sandbox: Sandbox) -> dict[str, Any]:
    """Alice and Bob of the bot's own organisation, a space each and one together."""
    alice = sandbox.add_person("alice@clinic.example.com", "Alice Doctor")
    bob = sandbox.add_person("bob@clinic.example.com", "Bob Nurse")
    return {"alice": alice, "bob": bob,
            "room": sandbox.add_room("Clinic", members=[alice, bob]),
            "other": sandbox.add_room("Other", members=[bob])}


NOT_FORMS: dict[str, Callable[[RunningBot, dict[str, Any]], dict[str, Any]]] = {
    "a person's own message": lambda bot, c: bot.sandbox.post_message(
        c["alice"], c["room"], "just chatting", mention_bot=False),
    "the bot's help card": lambda bot, c: new_messages(
        bot, c["room"], lambda: bot.sandbox.post_message(c["alice"], c["room"], "help"))[0],
}


@pytest.mark.parametrize("make", NOT_FORMS.values(), ids=NOT_FORMS.keys())
def test_a_submit_on_a_message_that_is_not_a_form_creates_nothing(
    running_bot: RunningBot, clinic: dict[str, Any],
    make: Callable[[RunningBot, dict[str, Any]], dict[str, Any]],
) -> None:
    """Create inputs attached to any other message: told the form is not active, no broker."""
    message = make(running_bot, clinic)
    replies = new_messages(running_bot, clinic["room"], lambda: running_bot.sandbox.submit_card(
        clinic["alice"], message["id"], create_inputs()))
    assert [m["markdown"] for m in replies] == [
        "This form is no longer active here. Mention me with **new** for a fresh one."]
    assert broker_calls(running_bot.sandbox) == 0


def test_forged_webhook_data_cannot_move_a_submit_to_another_space(
    running_bot: RunningBot, clinic: dict[str, Any]
) -> None:
    """The bot fetches the action and trusts only that, never the webhook's roomId or personId."""
    # The sandbox cannot make Webex record an action whose space differs from its card's, so the
    # delivery itself is forged (correctly signed: someone with the secret). It claims Bob pressed
    # in the other space; the fetched action says Alice pressed in the clinic, so the meeting is
    # Alice's, in the clinic, and the other space and Bob hear nothing.
    sandbox = running_bot.sandbox
    form = post_form(running_bot, clinic["alice"], clinic["room"])
    webhook_id = webhook_for(running_bot, "attachmentActions")
    sandbox.disable_webhook(webhook_id)  # only the forged delivery below reaches the bot
    action = sandbox.submit_card(clinic["alice"], form["id"], create_inputs("Alice only"))
    forged = {**{k: action[k] for k in ("id", "type", "messageId", "created")},
              "roomId": clinic["other"]["id"], "personId": clinic["bob"]["id"]}
    assert sandbox.deliver(webhook_id, forged).status == 200
    running_bot.idle()
    assert running_bot.bot_messages(clinic["other"]) == []
    assert running_bot.bot_messages(sandbox.direct_room(clinic["bob"])) == []
    assert any("Guest 1" in m["markdown"] for m in running_bot.bot_messages(clinic["room"]))
    host_links = running_bot.bot_messages(sandbox.direct_room(clinic["alice"]))
    assert host_links and "Host 1" in host_links[0]["markdown"]
    assert broker_calls(sandbox) == 1


def test_an_action_from_another_space_than_its_form_is_refused(
    running_bot: RunningBot, clinic: dict[str, Any]
) -> None:
    """Should Webex ever report a form's submit from another space: no meeting, form kept."""
    sandbox = running_bot.sandbox
    form = post_form(running_bot, clinic["alice"], clinic["room"])
    webhook_id = webhook_for(running_bot, "attachmentActions")
    sandbox.disable_webhook(webhook_id)  # the lookup is answered below, then delivered
    action = sandbox.submit_card(clinic["bob"], form["id"], create_inputs())
    moved = {**action, "roomId": clinic["other"]["id"]}
    # The sandbox always records the card's space; its fault injection answers the bot's
    # lookup of this action with another space instead.
    sandbox.fail("GET", f"/v1/attachment/actions/{action['id']}", status=200, body=moved)
    data = {k: moved[k] for k in ("id", "type", "messageId", "personId", "roomId", "created")}
    replies = new_messages(running_bot, clinic["other"],
                           lambda: sandbox.deliver(webhook_id, data))
    assert [m["markdown"] for m in replies] == [
        "This form is no longer active here. Mention me with **new** for a fresh one."]
    assert broker_calls(sandbox) == 0
    assert not sandbox.message(form["id"]).get("deleted")


def webhook_for(bot: RunningBot, resource: str) -> str:
    """The id of the bot's webhook for ``resource``, as Webex lists it."""
    listed = requests.get(f"{bot.sandbox.webex_base_url}webhooks", timeout=10,
                          headers={"Authorization": f"Bearer {bot.sandbox.bot_token}"}).json()
    [hook] = [h for h in listed["items"] if h["resource"] == resource]
    return str(hook["id"])


# The per-person meeting limit ---------------------------------------------------------------


@pytest.fixture
def limited(sandbox: Sandbox, tmp_path: Any) -> Iterator[RunningBot]:
    """A bot allowing two meetings per person per hour."""
    yield from serve(sandbox, sandbox_settings(sandbox, tmp_path, meetings_per_person=2,
                                               meetings_window=timedelta(hours=1)))


def test_the_meeting_limit_is_per_person_and_says_so_kindly(
    limited: RunningBot, clinic: dict[str, Any]
) -> None:
    """Alice's third meeting (by message or by form) is refused kindly; Bob is not affected."""
    sandbox = limited.sandbox
    alice_dm = sandbox.direct_room(clinic["alice"])
    for number in (1, 2):
        new_messages(limited, alice_dm, lambda n=number: sandbox.post_message(
            clinic["alice"], alice_dm, f"meet Visit {n}"))
    assert broker_calls(sandbox) == 2

    [refusal] = new_messages(limited, alice_dm, lambda: sandbox.post_message(
        clinic["alice"], alice_dm, "meet Visit 3"))
    assert refusal["markdown"] == ("You have created 2 meetings in the last 60 minutes, which "
                                   "is the limit. Please try again later.")
    form = post_form(limited, clinic["alice"], clinic["room"])
    [by_form] = new_messages(limited, clinic["room"], lambda: sandbox.submit_card(
        clinic["alice"], form["id"], create_inputs()))
    assert "which is the limit" in by_form["markdown"]
    assert not sandbox.message(form["id"]).get("deleted")  # pressed again later, it still works
    assert broker_calls(sandbox) == 2

    bob_dm = sandbox.direct_room(clinic["bob"])
    [links] = new_messages(limited, bob_dm, lambda: sandbox.post_message(
        clinic["bob"], bob_dm, "meet Bob's visit"))
    assert "Guest 1" in links["markdown"]
    assert broker_calls(sandbox) == 3


def test_problems_do_not_count_against_the_limit(
    limited: RunningBot, clinic: dict[str, Any]
) -> None:
    """Mistyped commands are answered with what to fix and leave the allowance untouched."""
    sandbox = limited.sandbox
    dm = sandbox.direct_room(clinic["alice"])
    for _ in range(3):
        [fix] = new_messages(limited, dm, lambda: sandbox.post_message(
            clinic["alice"], dm, "meet Visit guests=99"))
        assert fix["markdown"].startswith("Please fix")
    for number in (1, 2):
        new_messages(limited, dm, lambda n=number: sandbox.post_message(
            clinic["alice"], dm, f"meet Visit {n}"))
    assert broker_calls(sandbox) == 2
