"""Did the text arrive? Twilio's status callbacks, from the sandbox's signature to the person told.

Twilio's own ``RequestValidator`` (the ``twilio`` package, a test dependency only) judges the
sandbox's signatures and signs the callbacks fed to the bot's endpoint here, so neither side
can agree with the other on a wrong algorithm. The conversation part runs over the harness (the
fakes and a real store); the end-to-end part over the sandbox and the bot served on a socket,
behind a "proxy" (the sandbox's route) so that the URL the bot sees is not the one Twilio signs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from twilio.request_validator import RequestValidator

from bot.devtools.in_process import sandbox_guest_channels
from bot.devtools.sandbox import Sandbox
from bot.errors import Rejected
from bot.jobs.runner import Attempt
from bot.jobs.storage import Store
from bot.meetings.record import Fate, Meeting
from bot.secret import Secret
from bot.settings import Settings
from bot.upstream.sms import TwilioConfig, TwilioSms
from bot.web.intake import Reply
from bot.web.sms_status import SMS_STATUS_PATH, TextStatusIntake, twilio_signature
from tests.conftest import FAST_RETRY, RunningBot, sandbox_settings, serve
from tests.support.conversation import ALICE, CLINIC, DM, Bot

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://bot.clinic.example"
CALLBACK = PUBLIC + SMS_STATUS_PATH
ZOE_MOBILE = "+33612345678"
NOT_TOLD = "Text messages are sent to the carrier; I am not told whether they arrive."


# The sandbox signs as Twilio does --------------------------------------------------------------

def test_the_sandboxs_callbacks_pass_twilios_own_request_validator(sandbox: Sandbox) -> None:
    sandbox.twilio_status_plan("sent", "delivered", "undelivered:30003", "failed:30008",
                               pause=0)
    client = TwilioSms(TwilioConfig(
        sandbox.twilio_account_sid, Secret(sandbox.twilio_auth_token),
        from_number=sandbox.twilio_messaging_service_sid, api_url=sandbox.twilio_api_url,
        status_callback="https://127.0.0.1:9/sms status?ü=1&b=+2"))  # nobody listens there
    sandbox.twilio_status_plan(to="+33612345679")  # this number's carrier never says
    client.send("+33612345679", "Hello")
    sid = client.send(ZOE_MOBILE, "Hola Zoë: https://ic.example.test/s/g1")
    calls = sandbox.wait_for(lambda: len(sandbox.twilio_callbacks) == 4
                             and sandbox.twilio_callbacks)
    validator = RequestValidator(sandbox.twilio_auth_token)
    for call in calls:
        form = dict(call.form)
        assert form["MessageSid"] == form["SmsSid"] == sid and form["To"] == ZOE_MOBILE
        assert form["MessagingServiceSid"] == sandbox.twilio_messaging_service_sid
        assert validator.validate(call.url, form, call.signature)
        assert not validator.validate(call.url, {**form, "MessageStatus": "delivered!"},
                                      call.signature)
    assert [(c.status, c.error_code) for c in calls] == [
        ("sent", None), ("delivered", None), ("undelivered", 30003), ("failed", 30008)]
    assert "ErrorCode" not in dict(calls[0].form) and dict(calls[3].form)["ErrorCode"] == "30008"


def test_by_default_a_text_is_reported_as_twilio_usually_reports_it(sandbox: Sandbox) -> None:
    client = TwilioSms(TwilioConfig(
        sandbox.twilio_account_sid, Secret(sandbox.twilio_auth_token),
        from_number=sandbox.twilio_messaging_service_sid, api_url=sandbox.twilio_api_url,
        status_callback="https://127.0.0.1:9/status"))
    client.send(ZOE_MOBILE, "Your link")
    calls = sandbox.wait_for(lambda: len(sandbox.twilio_callbacks) == 3
                             and sandbox.twilio_callbacks)
    # no report of "accepted", the status the message was created with
    assert [call.status for call in calls] == ["queued", "sent", "delivered"]


def test_no_callback_is_asked_for_without_a_status_url(sandbox: Sandbox) -> None:
    sandbox.twilio_status_plan("sent", pause=0)
    client = TwilioSms(TwilioConfig(sandbox.twilio_account_sid, Secret(sandbox.twilio_auth_token),
                                    from_number=sandbox.twilio_from,
                                    api_url=sandbox.twilio_api_url))
    client.send(ZOE_MOBILE, "Your link")
    [sms] = sandbox.sms()
    assert sms.status_callback is None and not client.reports_fate
    assert sandbox.twilio_callbacks == []


@pytest.mark.parametrize("form", [
    {"MessageSid": "SM1", "MessageStatus": "sent", "Body": "a b+c&d=é"},
    {"A": "", "B": "x", "a": "y"},
    {},
])
def test_the_bots_signature_is_twilios(form: dict[str, str]) -> None:
    url = "https://bot.clinic.example/twilio/status?x=1&y=%20"
    expected = RequestValidator(TOKEN).compute_signature(url, form)
    assert twilio_signature(url, {name: [value] for name, value in form.items()}, TOKEN) == \
        expected


def test_public_url_gives_each_text_the_bots_status_callback() -> None:
    env = {"WEBEX_BOT_TOKEN": "token", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
           "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": "+15005550006"}
    assert Settings.from_env(env).sms.status_callback is None  # type: ignore[union-attr]
    with_url = Settings.from_env({**env, "PUBLIC_URL": PUBLIC + "/"})
    assert with_url.sms is not None and with_url.sms.status_callback == CALLBACK


# The endpoint ----------------------------------------------------------------------------------

@pytest.fixture
def bot(store: Store) -> Bot:
    made = Bot(store)
    made.sms.reports_fate = True  # as TwilioSms with a status callback
    made.webex.members |= {(CLINIC, ALICE.id)}
    return made


@pytest.fixture
def intake(store: Store) -> TextStatusIntake:
    return TextStatusIntake(CALLBACK, Secret(TOKEN), store, max_backlog=100)


def signed(form: dict[str, str], *, url: str = CALLBACK, token: str = TOKEN) -> dict[str, str]:
    """The headers Twilio sends with ``form``, signed by Twilio's own library."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


def callback(sid: str, status: str) -> dict[str, str]:
    """The form of one status callback (``status`` or ``status:code``)."""
    status, _, code = status.partition(":")
    form = {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "From": "+15005550006",
            "To": ZOE_MOBILE, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
            "SmsStatus": status}
    return {**form, "ErrorCode": code} if code else form


def report(bot: Bot, intake: TextStatusIntake, sid: str, status: str) -> Reply:
    """Twilio calls the endpoint; a worker handles what it queued."""
    form = callback(sid, status)
    reply = intake.receive({name: [value] for name, value in form.items()}, signed(form))
    job = bot.store.claim("test-worker", 60.0)
    if job is not None:
        bot.conversation.process(Attempt(job, last=False))
        bot.store.complete(job.event_id, "test-worker")
    return reply


def make(bot: Bot, room: str = CLINIC) -> Meeting:
    """Alice makes a meeting with one guest reached by text message; the maker's report."""
    bot.say(f"meet Follow-up to={ZOE_MOBILE}", room=room, mention=room != DM)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    return meeting


def listed(bot: Bot, room: str = CLINIC) -> str:
    """What "meetings" shows, as text."""
    before = len(bot.webex.sent)
    bot.say("meetings", room=room, mention=room != DM)
    [posted] = bot.webex.sent[before:]
    return str(posted.get("card")).replace("\u200b", "")  # the card's places to break words


def told(bot: Bot, since: int) -> list[dict[str, Any]]:
    return bot.webex.sent[since:]


OUTCOMES = {
    "sent": "text message sent to the carrier",
    "delivered": "text message delivered",
    "undelivered:30003": "text message not delivered (Twilio error 30003)",
    "failed:30008": "text message not delivered (Twilio error 30008)",
}


@pytest.mark.parametrize("status", OUTCOMES)
def test_each_outcome_is_kept_on_the_meeting_and_listed(bot: Bot, intake: TextStatusIntake,
                                                        status: str) -> None:
    meeting = make(bot)
    [delivery] = meeting.deliveries
    assert delivery.reference == "SM1"
    assert ("I will say here if one is not delivered."
            in bot.webex.sent[-1]["markdown"])
    before = len(bot.webex.sent)
    assert report(bot, intake, "SM1", status) == Reply(200, {"status": "accepted"})
    stored = bot.book.get(meeting.id)
    assert stored is not None and stored.deliveries[0].fate is not None
    assert stored.deliveries[0].fate.status == status.partition(":")[0]
    failed = status.startswith(("undelivered", "failed"))
    said = told(bot, before)
    assert len(said) == (1 if failed else 0)
    if failed:  # told in the thread of the links message, in the space, the number masked
        [message] = said
        assert message["room_id"] == CLINIC
        assert message["parent_id"] == (meeting.thread or meeting.links_message)
        assert "was not delivered" in message["markdown"]
        assert "+33 6 •• •• •• 78" in message["markdown"] and ZOE_MOBILE not in str(message)
        assert status.partition(":")[2] in message["markdown"]
    assert OUTCOMES[status] in listed(bot)


def test_without_a_status_url_a_text_is_sent_to_the_carrier_never_delivered(bot: Bot) -> None:
    bot.sms.reports_fate = False
    meeting = make(bot)
    assert meeting.deliveries[0].reference == ""  # nothing will come to look it up by
    assert bot.webex.sent[-1]["markdown"].endswith(NOT_TOLD)
    shown = listed(bot)
    assert "text message sent to the carrier" in shown and "delivered" not in shown


def test_a_later_status_never_goes_back_and_the_first_final_word_stands(
    bot: Bot, intake: TextStatusIntake,
) -> None:
    meeting = make(bot)
    assert report(bot, intake, "SM1", "sent").status == 200
    assert "text message sent to the carrier" in listed(bot)
    before = len(bot.webex.sent)
    assert report(bot, intake, "SM1", "delivered").status == 200  # moves on from sent
    assert report(bot, intake, "SM1", "sent").status == 200  # late: delivered stays
    assert report(bot, intake, "SM1", "failed:30008").status == 200  # after a final word
    assert report(bot, intake, "SM1", "delivered") == Reply(200, {"status": "duplicate"})
    assert report(bot, intake, "SM1", "queued") == Reply(200, {"status": "ignored"})
    stored = bot.book.get(meeting.id)
    assert stored is not None and stored.deliveries[0].fate is not None
    assert stored.deliveries[0].fate.status == "delivered"
    assert told(bot, before) == []  # nothing said of a message that arrived
    assert "text message delivered" in listed(bot)


def test_a_text_not_delivered_is_told_once(bot: Bot, intake: TextStatusIntake,
                                           store: Store) -> None:
    make(bot)
    before = len(bot.webex.sent)
    form = callback("SM1", "undelivered:30003")
    body = {name: [value] for name, value in form.items()}
    assert intake.receive(body, signed(form)).status == 200
    job = store.claim("test-worker", 60.0)
    assert job is not None
    bot.conversation.process(Attempt(job, last=False))
    retried = dataclasses.replace(job, attempts=2)  # the worker died before completing it
    bot.conversation.process(Attempt(retried, last=False))
    assert intake.receive(body, signed(form)) == Reply(200, {"status": "duplicate"})
    assert report(bot, intake, "SM1", "failed:30008").status == 200  # another final word
    assert report(bot, intake, "SM1", "sent").status == 200
    assert len(told(bot, before)) == 1
    rows = [row for row in bot.book.audit_rows(0) if row.what == "guest text not delivered"]
    assert [row.detail for row in rows] == [
        "guest 1 sms +33 6 •• •• •• 78: undelivered Twilio error 30003: the phone is off or "
        "out of reach"]


def test_a_failure_in_the_1to1_space_names_the_whole_number(bot: Bot,
                                                            intake: TextStatusIntake) -> None:
    make(bot, room=DM)
    before = len(bot.webex.sent)
    report(bot, intake, "SM1", "failed:30005")
    [message] = told(bot, before)
    assert message["room_id"] == DM and ZOE_MOBILE in message["markdown"]


def test_a_space_that_cannot_be_told_is_logged_and_the_status_kept(
    bot: Bot, intake: TextStatusIntake, caplog: pytest.LogCaptureFixture,
) -> None:
    meeting = make(bot)
    bot.webex.fail(Rejected("Webex", status=404), "send")
    assert report(bot, intake, "SM1", "failed:30003").status == 200
    stored = bot.book.get(meeting.id)
    assert stored is not None and stored.deliveries[0].fate == Fate("failed", 30003)
    assert "could not tell a space" in caplog.text


@pytest.mark.parametrize("headers", [
    {},  # unsigned
    signed(callback("SM1", "failed:30003"), token="f" * 32),  # another account's token
    signed(callback("SM1", "failed:30003"), url="http://127.0.0.1:8080" + SMS_STATUS_PATH),
    signed(callback("SM1", "delivered")),  # signed for another status
])
def test_a_forged_callback_is_refused_and_nothing_is_kept(
    bot: Bot, intake: TextStatusIntake, store: Store, headers: dict[str, str],
) -> None:
    meeting = make(bot)
    backlog = store.backlog()
    form = callback("SM1", "failed:30003")
    reply = intake.receive({name: [value] for name, value in form.items()}, headers)
    assert reply == Reply(403, {"error": "invalid signature"})
    assert store.backlog() == backlog
    stored = bot.book.get(meeting.id)
    assert stored is not None and stored.deliveries[0].fate is None


def test_a_callback_for_a_message_the_bot_did_not_send_is_refused(
    bot: Bot, intake: TextStatusIntake, store: Store,
) -> None:
    make(bot)
    backlog = store.backlog()
    form = callback("SM999", "failed:30003")
    reply = intake.receive({name: [value] for name, value in form.items()}, signed(form))
    assert reply == Reply(404, {"error": "unknown message"}) and store.backlog() == backlog
    form = {"MessageStatus": "sent"}
    assert intake.receive({"MessageStatus": ["sent"]}, signed(form)).status == 400


# End to end: the sandbox's Twilio calls the bot behind a proxy ---------------------------------

@pytest.fixture
def texting_bot(sandbox: Sandbox, tmp_path: Any) -> Iterator[RunningBot]:
    channels = sandbox_guest_channels(sandbox, retry=FAST_RETRY)
    channels["sms"] = dataclasses.replace(channels["sms"], status_callback=CALLBACK)
    sandbox.twilio_status_plan()  # this test reports each status itself
    settings = sandbox_settings(sandbox, tmp_path, public_url=PUBLIC, **channels)
    for running in serve(sandbox, settings):
        sandbox.twilio_route(PUBLIC, running.url.removesuffix(settings.webhook_path))
        yield running


def test_the_sandboxs_twilio_reports_each_outcome_to_the_bot_behind_a_proxy(
    texting_bot: RunningBot, sandbox: Sandbox,
) -> None:
    alice = sandbox.add_person("alice@clinic.example.com", "Alice Doctor",
                               timezone="Europe/Paris")
    clinic = sandbox.add_room("Clinic", members=[alice])
    sandbox.post_message(alice, clinic, f"meet Follow-up to={ZOE_MOBILE}", mention_bot=True)
    texting_bot.idle()
    [sms] = sandbox.sms()
    assert sms.status_callback == CALLBACK
    answers = [sandbox.twilio_report(sms.sid, status).answer
               for status in ("delivered", "sent", "delivered", "undelivered:30003")]
    assert answers == [200, 200, 200, 200]  # out of order, repeated: each taken, none harms
    texting_bot.idle()
    assert not any("was not delivered" in m.get("markdown", "")
                   for m in texting_bot.bot_messages(clinic))
    stranger = TwilioSms(TwilioConfig(  # the same account, a message the bot did not send
        sandbox.twilio_account_sid, Secret(sandbox.twilio_auth_token),
        from_number=sandbox.twilio_from, api_url=sandbox.twilio_api_url,
        status_callback=CALLBACK))
    assert sandbox.twilio_report(stranger.send(ZOE_MOBILE, "Hi"), "sent").answer == 404
    # a second guest whose text fails: one message, in the thread of the links message
    sandbox.post_message(alice, clinic, "meet Second to=+33612345679", mention_bot=True)
    texting_bot.idle()
    second = sandbox.sms()[-1]
    links = next(m for m in texting_bot.bot_messages(clinic)
                 if m.get("markdown", "").startswith("**Meeting links: Second"))
    for _ in range(2):
        assert sandbox.twilio_report(second.sid, "failed:30003").answer == 200
    texting_bot.idle()
    failed = [m for m in texting_bot.bot_messages(clinic)
              if "was not delivered" in m.get("markdown", "")]
    assert len(failed) == 1 and failed[0]["parentId"] == links["id"]
    forged = requests.post(texting_bot.url.removesuffix("/webhooks") + SMS_STATUS_PATH,
                           data=callback(second.sid, "delivered"), timeout=5)
    assert forged.status_code == 403
