"""Scenario tests: people talk to the running bot in the sandbox, assertions on what it received.

Every path runs twice: the bot hearing Webex through signed webhooks, and through its websocket
(``EVENTS=websocket``, no public URL). Tests about webhook deliveries themselves run once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.limits import JOIN_EARLY
from cards import inputs as ids

IN_TEN_DAYS = (date.today() + timedelta(days=10)).isoformat()
WEBHOOKS_ONLY = pytest.mark.parametrize("events", ["webhooks"])


@pytest.fixture(params=["webhooks", "websocket"])
def events(request):
    return request.param


@pytest.fixture
def alice(sandbox):
    return sandbox.add_person(
        "alice@clinic.example.com", "Alice Doctor", timezone="America/New_York"
    )


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
    form = post_form(running_bot, sandbox, alice, clinic)
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
    # Valid 4 hours from the start, and open JOIN_EARLY before it for those who join early.
    assert body["jwt"]["exp"] - body["jwt"]["nbf"] == 4 * 3600 + JOIN_EARLY.total_seconds()


def create_inputs(**changes):
    inputs = {ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Consultation", ids.HOSTS: "1",
              ids.GUESTS: "1", ids.SHORT_LINKS: "true", ids.VERTICAL: "gen",
              ids.HOST_LOGIN: "true", ids.VALID_FOR: "2h"}
    inputs.update(changes)
    return {k: v for k, v in inputs.items() if v is not None}


def post_form(running_bot, sandbox, person, room):
    before = len(running_bot.bot_messages(room))
    sandbox.post_message(person, room, "new", mention_bot=True)
    running_bot.idle()  # the form is recorded just after Webex shows it; no person is that quick
    return running_bot.wait_for_bot_messages(room, before + 1)[-1]


def broker_calls(sandbox):
    return sandbox.requests_matching("POST", "/api/v2/joseencrypt")


@pytest.mark.parametrize("text", ["meeting", "NEW!", "  new.", "", "Meet"])
def test_form_commands_and_bare_mentions(running_bot, sandbox, alice, clinic, text):
    sandbox.post_message(alice, clinic, text, mention_bot=True, mention_form="uuid")
    [form] = running_bot.wait_for_bot_messages(clinic, 1)
    assert ids.ACTION_CREATE in str(form["attachments"][0]["content"])


def test_quick_path_in_a_direct_space(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "meet Consultation guests=3 valid=4h type=hc")
    running_bot.idle()
    [call] = broker_calls(sandbox)
    assert (call.json["numHost"], call.json["numGuest"], call.json["verticalType"]) == (1, 3, "hc")
    [links] = running_bot.bot_messages(dm)
    assert all(f"Guest {n}" in links["markdown"] for n in (1, 2, 3))
    assert "Host 1" in links["markdown"]
    _, claims = sandbox.decrypt(links["markdown"].split("data=")[1].split()[0])
    assert claims["exp"] - claims["iat"] == pytest.approx(4 * 3600, abs=5)
    assert claims["sub"].startswith("Consultation-")


def test_quick_path_in_a_group_sends_host_links_privately(running_bot, sandbox, alice, clinic):
    sandbox.post_message(alice, clinic, "meet Consultation device='Cart 7'", mention_bot=True)
    running_bot.idle()
    room_text = " ".join(m["markdown"] for m in running_bot.bot_messages(clinic))
    assert "Guest 1" in room_text and "Host 1" not in room_text
    [private] = running_bot.bot_messages(sandbox.direct_room(alice))
    assert "Host 1" in private["markdown"]
    [call] = broker_calls(sandbox)
    assert call.json["jwt"]["flow"]["data"] == [{"uri": "cart-7@clinic.example.com"}]


@pytest.mark.parametrize(
    ("text", "named"),
    [("meet Consultation guests=30", "Guests"), ("meet X hosts=-1", "Hosts"),
     ("meet X valid=3x", "Links valid for"),
     ("meet X device=not-a-sip", "Other video devices (SIP addresses)"),
     ("meet X colour=blue", "Option colour")],
)
def test_quick_path_with_bad_options_names_them(running_bot, sandbox, alice, text, named):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, text)
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert named in reply["markdown"]
    running_bot.idle()
    assert broker_calls(sandbox) == []


def test_unknown_text_gets_short_help_with_a_button(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "what is the weather")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "did not catch" in reply["markdown"]
    [button] = reply["attachments"][0]["content"]["actions"]
    assert button["data"][ids.ACTION] == ids.ACTION_SHOW_FORM


def test_devices_lists_the_catalog(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "devices")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "Exam Room 1" in reply["markdown"] and "cart-7@clinic.example.com" in reply["markdown"]


def test_help_button_opens_the_form(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "help")
    [help_message] = running_bot.wait_for_bot_messages(dm, 1)
    sandbox.submit_card(alice, help_message["id"], {ids.ACTION: ids.ACTION_SHOW_FORM})
    [_, form] = running_bot.wait_for_bot_messages(dm, 2)
    assert ids.ACTION_CREATE in str(form["attachments"][0]["content"])


def test_a_message_in_a_thread_is_answered_in_the_thread(running_bot, sandbox, alice, clinic):
    root = sandbox.post_message(alice, clinic, "Starting the day", mention_bot=False)
    sandbox.post_message(alice, clinic, "help", mention_bot=True, parent_id=root["id"])
    [reply] = running_bot.wait_for_bot_messages(clinic, 1)
    assert reply["parentId"] == root["id"]


@WEBHOOKS_ONLY
def test_the_bot_ignores_its_own_messages(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "help")
    running_bot.wait_for_bot_messages(dm, 1)
    own = [d for d in sandbox.deliveries if d.resource == "messages"]
    sandbox.wait_for(lambda: len([d for d in sandbox.deliveries if d.resource == "messages"]) >= 2)
    running_bot.idle()
    assert len(running_bot.bot_messages(dm)) == 1
    assert len(sandbox.requests_matching("GET", "/v1/messages/*")) == len(own)


def test_the_bot_introduces_itself_when_added(running_bot, sandbox, alice):
    room = sandbox.add_room("New team", members=[alice], with_bot=False)
    sandbox.add_bot_to_room(room, by=alice)
    [hello] = running_bot.wait_for_bot_messages(room, 1)
    assert hello["markdown"].startswith("Hello!")


def test_invalid_submit_names_each_field_and_keeps_the_form(running_bot, sandbox, alice, clinic):
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.submit_card(alice, form["id"], create_inputs(
        **{ids.SUBJECT: "  ", ids.HOSTS: "abc", ids.GUESTS: "30",
           ids.EXTRA_DEVICES: "not-a-sip", ids.VALID_FOR: "forever", ids.START_DATE: "tomorrow"}))
    [_, reply] = running_bot.wait_for_bot_messages(clinic, 2)
    for label in ("Subject", "Hosts", "Guests", "Other video devices (SIP addresses)",
                  "Links valid for", "Start date"):
        assert f"**{label}**" in reply["markdown"]
    assert not sandbox.message(form["id"]).get("deleted")
    assert broker_calls(sandbox) == []
    sandbox.submit_card(alice, form["id"], create_inputs())
    running_bot.idle()
    assert len(broker_calls(sandbox)) == 1
    assert sandbox.message(form["id"])["deleted"]


def next_spring_gap(zone: str) -> date:
    """The next day, within a year, whose 02:30 the clocks of ``zone`` skip."""
    tz = ZoneInfo(zone)
    for days in range(1, 366):
        day = date.today() + timedelta(days)
        if datetime.combine(day, time(2, 30), tz).astimezone(UTC).astimezone(tz).hour != 2:
            return day
    raise AssertionError(f"{zone} skips no 02:30 within a year")


def test_a_start_the_clocks_skip_is_explained_with_the_links(running_bot, sandbox, alice, clinic):
    day = next_spring_gap("America/New_York")
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.submit_card(alice, form["id"], create_inputs(**{
        ids.START_DATE: day.isoformat(), ids.START_TIME: "02:30",
        ids.PRIVATE_HOST_LINKS: "false"}))
    running_bot.idle()
    [links] = [m for m in running_bot.bot_messages(clinic) if "Guest 1" in m["markdown"]]
    shown = f"{day:%a} {day.day} {day:%b}"
    # The links open 10 minutes before the meeting's start, 03:30 (JOIN_EARLY).
    assert f"Valid {shown} {day.year} 03:20 to 05:30 (America/New\\_York)" in links["markdown"]
    assert (f"Note: 02:30 does not exist on {shown} in America/New\\_York: the clocks go "
            "forward then. The start is 03:30 instead.") in links["markdown"]
    assert "02:30 does not exist" in str(links["attachments"][0]["content"])


def test_a_subject_with_joined_emoji_gets_links(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "meet 👩\u200d⚕️ Visit")
    running_bot.idle()
    [call] = broker_calls(sandbox)
    assert call.json["jwt"]["sub"].startswith("Visit-")
    [links] = running_bot.bot_messages(dm)
    assert "👩\u200d⚕️ Visit" in links["markdown"]


def test_a_forged_number_is_refused_by_name(running_bot, sandbox, alice, clinic):
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.submit_card(alice, form["id"], create_inputs(**{ids.HOSTS: 3}))
    [_, reply] = running_bot.wait_for_bot_messages(clinic, 2)
    assert "**Hosts**: Must be text, but this submit sent a number." in reply["markdown"]
    running_bot.idle()
    assert broker_calls(sandbox) == []


def test_second_press_of_a_used_form_says_already_created(running_bot, sandbox, alice, clinic):
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.submit_card(alice, form["id"], create_inputs())
    running_bot.idle()
    sandbox.submit_card(alice, form["id"], create_inputs())
    running_bot.idle()
    assert len(broker_calls(sandbox)) == 1
    assert "already created" in running_bot.bot_messages(clinic)[-1]["markdown"]


def redeliver(sandbox, resource, data, times):
    webhook_ids = {d.webhook_id for d in sandbox.deliveries if d.resource == resource}
    [webhook_id] = webhook_ids
    return [sandbox.deliver(webhook_id, data).status for _ in range(times)]


@WEBHOOKS_ONLY
def test_duplicate_message_deliveries_get_one_reply(running_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    message = sandbox.post_message(alice, dm, "help")
    data = {"id": message["id"], "roomId": dm["id"], "roomType": "direct",
            "personId": alice["id"], "personEmail": alice["emails"][0]}
    assert redeliver(sandbox, "messages", data, 3) == [200, 200, 200]
    running_bot.idle()
    assert len(running_bot.bot_messages(dm)) == 1


@WEBHOOKS_ONLY
def test_duplicate_submit_deliveries_make_one_meeting(running_bot, sandbox, alice, clinic):
    form = post_form(running_bot, sandbox, alice, clinic)
    action = sandbox.submit_card(alice, form["id"], create_inputs())
    data = {"id": action["id"], "type": "submit", "messageId": form["id"],
            "personId": alice["id"], "roomId": clinic["id"]}
    assert redeliver(sandbox, "attachmentActions", data, 3) == [200, 200, 200]
    running_bot.idle()
    assert len(broker_calls(sandbox)) == 1


@pytest.fixture
def mallory(sandbox):
    return sandbox.add_person("mallory@elsewhere.example.net", "Mallory", org_id="OTHER-ORG")


def test_a_person_from_another_org_is_refused_on_messages(running_bot, sandbox, mallory):
    dm = sandbox.direct_room(mallory)
    sandbox.post_message(mallory, dm, "meet Secret plans")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "Sorry" in reply["markdown"] and "attachments" not in reply
    running_bot.idle()
    assert broker_calls(sandbox) == []


def test_a_person_from_another_org_is_refused_on_submits(running_bot, sandbox, alice, mallory):
    room = sandbox.add_room("Shared", members=[alice, mallory])
    form = post_form(running_bot, sandbox, alice, room)
    sandbox.submit_card(mallory, form["id"], create_inputs())
    running_bot.idle()
    assert "Sorry" in running_bot.bot_messages(room)[-1]["markdown"]
    assert broker_calls(sandbox) == []
    assert not sandbox.message(form["id"]).get("deleted")


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "Instant Connect is activated"), (403, "Instant Connect is activated"),
     (503, "temporarily unavailable"), (429, "busy")],
)
def test_broker_failures_are_explained_with_a_reference(
    running_bot, sandbox, alice, clinic, status, words
):
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.fail("POST", "/api/v2/joseencrypt", status=status, retry_after="0")
    sandbox.submit_card(alice, form["id"], create_inputs())
    running_bot.idle()
    reply = running_bot.bot_messages(clinic)[-1]["markdown"]
    assert words in reply and "Reference: " in reply and "Traceback" not in reply
    assert not sandbox.message(form["id"]).get("deleted")
    sandbox.clear_faults()
    sandbox.submit_card(alice, form["id"], create_inputs())
    running_bot.idle()
    assert sandbox.message(form["id"])["deleted"]


def test_a_message_that_cannot_be_fetched_is_not_met_with_silence(running_bot, sandbox, alice):
    sandbox.fail("GET", "/v1/messages/*", status=404)
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "help")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "Sorry" in reply["markdown"] and "Webex" in reply["markdown"]


def test_webex_down_is_retried_later_and_nothing_is_lost(running_bot, sandbox, alice):
    sandbox.fail("POST", "/v1/messages", status=503, times=4)
    dm = sandbox.direct_room(alice)
    sandbox.post_message(alice, dm, "help")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "Here is what I can do" in reply["markdown"]


def test_twenty_five_long_links_all_arrive_within_message_limits(
    running_bot, sandbox, alice, clinic
):
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.submit_card(alice, form["id"], create_inputs(
        **{ids.HOSTS: "5", ids.GUESTS: "20", ids.SHORT_LINKS: "false",
           ids.PRIVATE_HOST_LINKS: "false",
           ids.EXTRA_DEVICES: " ".join(f"room-{n}@clinic.example.com" for n in range(10))}))
    running_bot.idle()
    posts = [m for m in running_bot.bot_messages(clinic) if "links:" in m["markdown"]]
    assert len(posts) > 1
    text = "\n".join(m["markdown"] for m in posts)
    for label in [f"Host {n}" for n in range(1, 6)] + [f"Guest {n}" for n in range(1, 21)]:
        assert text.count(f"**{label}**") == 1, label
    assert all(len(m["markdown"].encode()) <= 7439 for m in posts)
    assert all(f"part {n} of {len(posts)}" in m["markdown"] for n, m in enumerate(posts, 1))


def test_no_private_message_without_host_links(running_bot, sandbox, alice, clinic):
    form = post_form(running_bot, sandbox, alice, clinic)
    sandbox.submit_card(alice, form["id"], create_inputs(**{ids.HOSTS: "0", ids.GUESTS: "2"}))
    running_bot.idle()
    assert running_bot.bot_messages(sandbox.direct_room(alice)) == []
    assert "Guest 2" in running_bot.bot_messages(clinic)[-1]["markdown"]


@pytest.fixture
def limited_bot(sandbox, tmp_path):
    from tests.conftest import sandbox_settings, serve

    yield from serve(sandbox, sandbox_settings(sandbox, tmp_path, meetings_per_person=2))


def test_per_person_meeting_limit(limited_bot, sandbox, alice):
    dm = sandbox.direct_room(alice)
    for number in range(3):
        sandbox.post_message(alice, dm, f"meet Consultation {number}")
        limited_bot.idle()
    assert len(broker_calls(sandbox)) == 2
    assert "limit" in limited_bot.bot_messages(dm)[-1]["markdown"]


def test_a_form_asked_for_in_a_thread_answers_in_that_thread(running_bot, sandbox, alice, clinic):
    root = sandbox.post_message(alice, clinic, "Ward round", mention_bot=False)
    sandbox.post_message(alice, clinic, "new", mention_bot=True, parent_id=root["id"])
    running_bot.idle()
    [form] = running_bot.bot_messages(clinic)
    sandbox.submit_card(alice, form["id"], create_inputs(**{ids.PRIVATE_HOST_LINKS: "false"}))
    running_bot.idle()
    replies = running_bot.bot_messages(clinic)
    assert replies and all(m.get("parentId") == root["id"] for m in replies)


def test_person_uuid_reads_both_id_forms():
    from bot.conversation.commands import person_uuid, strip_mention

    person_id = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xMjM0NTY3OC1hYmNk"
    assert person_uuid(person_id) == "12345678-abcd"
    assert strip_mention("", "Instant help", person_id, ("Instant",)) == "help"
    assert strip_mention("", "Instantly help", person_id, ("Instant",)) == "Instantly help"
