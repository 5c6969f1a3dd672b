"""Scenario tests: signed webhooks into the running bot, assertions on what the sandbox received."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cards import inputs as ids


IN_TEN_DAYS = (date.today() + timedelta(days=10)).isoformat()


@pytest.fixture
def alice(sandbox):
    return sandbox.add_person("alice@clinic.example.com", "Alice Doctor", timezone="America/New_York")


@pytest.fixture
def clinic(sandbox, alice):
    return sandbox.add_room("Clinic", members=[alice])


def test_help_in_a_direct_space(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "Help!")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "meet <subject>" in reply["markdown"]
    [card] = reply["attachments"]
    actions = [a for a in card["content"].get("actions", [])]
    assert actions and actions[0]["data"] == {ids.ACTION: ids.ACTION_SHOW_FORM}


def test_mention_in_a_group_gets_the_form(running_bot, sandbox, alice, clinic):
    sandbox.post_message(alice, clinic, "", mention_bot=True)
    [form] = running_bot.wait_for_bot_messages(clinic, 1)
    content = form["attachments"][0]["content"]
    assert "America/New_York" in str(content)
    assert ids.PRIVATE_HOST_LINKS in str(content)


def test_submit_creates_links_and_retires_the_form(running_bot, sandbox, alice, clinic):
    sandbox.post_message(alice, clinic, "new", mention_bot=True)
    [form] = running_bot.wait_for_bot_messages(clinic, 1)
    sandbox.submit_card(alice, form["id"], {
        ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Patient follow-up", ids.HOSTS: "1",
        ids.GUESTS: "2", ids.DEVICES: "exam-room-1@clinic.example.com",
        ids.EXTRA_DEVICES: "lab@clinic.example.com", ids.SHORT_LINKS: "true",
        ids.VERTICAL: "hc", ids.HOST_LOGIN: "false", ids.START_DATE: IN_TEN_DAYS,
        ids.START_TIME: "09:30", ids.VALID_FOR: "4h", ids.PRIVATE_HOST_LINKS: "true",
    })
    running_bot.idle()
    room_messages = running_bot.bot_messages(clinic)
    assert sandbox.message(form["id"])["deleted"]
    guest_posts = [m for m in room_messages if "Guest 1" in m.get("markdown", "")]
    assert len(guest_posts) == 1 and "Guest 2" in guest_posts[0]["markdown"]
    assert "Host 1" not in guest_posts[0]["markdown"]
    dm = sandbox.direct_room(alice)
    [private] = running_bot.bot_messages(dm)
    assert "Host 1" in private["markdown"]
    [broker_call] = sandbox.requests_matching("POST", "/api/v2/joseencrypt")
    body = broker_call.json
    assert body["numHost"] == 1 and body["numGuest"] == 2 and body["verticalType"] == "hc"
    assert body["jwt"]["flow"]["data"] == [{"uri": "exam-room-1@clinic.example.com"},
                                           {"uri": "lab@clinic.example.com"}]
    assert body["jwt"]["exp"] - body["jwt"]["nbf"] == 4 * 3600
