"""The websocket listener against the sandbox's Webex: every event stored once, every frame
acknowledged only once its event is stored, through drops, refusals, duplicates, a forgotten
device, a replaced or silent socket, a storage outage and a restart.

The conversation itself over the websocket is in ``test_conversation.py`` (every path runs over
both channels); the listener killed with SIGKILL mid-stream is in ``test_listen_crash.py``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.devtools.sandbox import Sandbox
from bot.jobs.storage import StoreUnavailable
from bot.jobs.storage.sqlite import SqliteStore
from bot.listen.listener import DEVICE, LEASE, release_lease_of
from bot.service import BotService
from bot.settings import Settings
from cards import inputs as ids
from tests.conftest import RunningBot, quick_listen, sandbox_settings, serve
from tests.support.faults import poll_until
from tests.support.keys import MEETING_KEYS
from tests.support.proxy import connect_proxy


@pytest.fixture
def alice(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.add_person("alice@clinic.example.com", "Alice Doctor")


@pytest.fixture
def dm(sandbox: Sandbox, alice: dict[str, Any]) -> dict[str, Any]:
    return sandbox.direct_room(alice)


def listening_settings(box: Sandbox, tmp_path: Path, **changes: Any) -> Settings:
    return sandbox_settings(box, tmp_path, events="websocket", **changes)


@pytest.fixture
def listening(sandbox: Sandbox, tmp_path: Path) -> Iterator[RunningBot]:
    yield from serve(sandbox, listening_settings(sandbox, tmp_path))


running = contextlib.contextmanager(serve)


def live_devices(box: Sandbox) -> list[dict[str, Any]]:
    return [device for device in box.devices if not device.get("deleted")]


def replies(bot: RunningBot, room: dict[str, Any]) -> int:
    bot.idle()
    return len(bot.bot_messages(room))


def test_a_message_is_answered_and_its_frame_acknowledged(listening, sandbox, alice, dm):
    sandbox.post_message(alice, dm, "help")
    [reply] = listening.wait_for_bot_messages(dm, 1)
    assert "meet <subject>" in reply["markdown"]
    listening.idle()
    assert sandbox.mercury_settled()
    counts = listening.service.listener.counts
    assert counts["accepted"] == 1 and counts["duplicate"] == 0
    assert not sandbox.deliveries  # no webhook, no public URL
    assert len(live_devices(sandbox)) == 1


def test_what_a_webhook_would_not_carry_is_acknowledged_and_ignored(listening, sandbox, alice):
    clinic = sandbox.add_room("Clinic", members=[alice])
    sandbox.post_message(alice, clinic, "coffee, anyone?", mention_bot=False)
    sandbox.post_message(alice, clinic, "help", mention_bot=True)
    listening.wait_for_bot_messages(clinic, 1)
    assert replies(listening, clinic) == 1
    assert sandbox.mercury_settled()
    counts = listening.service.listener.counts
    # The group message without a mention, and the bot's own reply, come back over the socket.
    assert counts["accepted"] == 1 and counts["ignored"] >= 2


def test_an_event_arriving_both_ways_is_processed_once(sandbox, tmp_path, alice, dm):
    with running(sandbox, sandbox_settings(sandbox, tmp_path, events="both")) as bot:
        sandbox.post_message(alice, dm, "help")
        bot.wait_for_bot_messages(dm, 1)
        sandbox.wait_for(sandbox.mercury_settled)
        assert replies(bot, dm) == 1
        assert [d.status for d in sandbox.deliveries if d.resource == "messages"][:1] == [200]
        counts = bot.service.listener.counts
        assert counts["accepted"] + counts["duplicate"] == 1


def test_a_frame_sent_twice_is_stored_once(listening, sandbox, alice, dm):
    sandbox.mercury_fault("duplicate")
    sandbox.post_message(alice, dm, "help")
    listening.wait_for_bot_messages(dm, 1)
    assert replies(listening, dm) == 1
    counts = listening.service.listener.counts
    assert counts["accepted"] == 1 and counts["duplicate"] == 1


def test_a_late_frame_is_still_stored(listening, sandbox, alice, dm):
    sandbox.mercury_fault("delay", seconds=0.5)
    sandbox.post_message(alice, dm, "help")
    sandbox.post_message(alice, dm, "help me please")
    listening.wait_for_bot_messages(dm, 2)
    assert replies(listening, dm) == 2


@pytest.mark.parametrize("how", ["drop", "close"])
def test_a_broken_socket_reconnects_to_the_same_device_and_loses_nothing(
    listening, sandbox, alice, dm, how
):
    sandbox.mercury_fault(how, code=1011)
    sandbox.post_message(alice, dm, "help")  # the socket breaks as this frame leaves
    listening.wait_for_bot_messages(dm, 1)
    assert replies(listening, dm) == 1
    assert len(sandbox.mercury_handshakes) == 2
    assert len(sandbox.devices) == 1  # reused, not registered again
    assert listening.service.listener.counts["reconnects"] == 1


def test_a_message_sent_while_the_socket_was_down_is_caught_up(sandbox, tmp_path, alice, dm):
    sandbox.mercury_replay = False  # as Webex is believed to do: nothing resent
    with running(sandbox, listening_settings(sandbox, tmp_path)) as bot:
        sandbox.mercury_fault("drop")
        sandbox.post_message(alice, dm, "help")
        bot.wait_for_bot_messages(dm, 1)
        assert replies(bot, dm) == 1
        assert bot.service.listener.counts["caught up"] == 1


def test_a_refused_handshake_is_retried_with_backoff(sandbox, tmp_path, alice, dm):
    sandbox.mercury_fault("refuse", times=3, code=503)
    with running(sandbox, listening_settings(sandbox, tmp_path)) as bot:
        assert [h["status"] for h in sandbox.mercury_handshakes] == [503, 503, 503, 101]
        assert len(sandbox.devices) == 1
        sandbox.post_message(alice, dm, "help")
        bot.wait_for_bot_messages(dm, 1)


def test_a_forgotten_device_is_registered_again_once(listening, sandbox, alice, dm):
    [device] = sandbox.devices
    sandbox.delete_device(device["url"])  # closes the socket with 4404
    sandbox.wait_for(lambda: len(live_devices(sandbox)) == 1 and sandbox.mercury_connected())
    assert len(sandbox.devices) == 2
    sandbox.post_message(alice, dm, "help")
    listening.wait_for_bot_messages(dm, 1)
    assert listening.service.store.get(DEVICE.key()) is not None


def test_a_remembered_device_webex_forgot_answers_404_and_is_replaced(sandbox, tmp_path):
    settings = listening_settings(sandbox, tmp_path)
    with running(sandbox, settings):
        pass
    [device] = sandbox.devices
    sandbox.delete_device(device["url"])
    with running(sandbox, settings):
        statuses = [h["status"] for h in sandbox.mercury_handshakes]
        assert statuses[-2:] == [404, 101]
        assert len(live_devices(sandbox)) == 1 and len(sandbox.devices) == 2


def test_a_replaced_socket_backs_off_then_listens_again(listening, sandbox, alice, dm, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.listen.listener"):
        sandbox.close_mercury(4000, "replaced")
        sandbox.wait_for(lambda: len(sandbox.mercury_handshakes) == 2
                         and sandbox.mercury_connected(), timeout=5)
    assert "another connection took the bot's device" in caplog.text
    sandbox.post_message(alice, dm, "help")
    listening.wait_for_bot_messages(dm, 1)
    assert len(sandbox.devices) == 1


def test_a_silent_socket_is_given_up_and_opened_again(listening, sandbox, alice, dm):
    sandbox.mercury_fault("silent", times=1)  # the next ping gets no pong
    sandbox.wait_for(lambda: len(sandbox.mercury_handshakes) == 2
                     and sandbox.mercury_connected(), timeout=10)
    sandbox.post_message(alice, dm, "help")
    listening.wait_for_bot_messages(dm, 1)
    sandbox.wait_for(lambda: sandbox.pongs)  # the keep-alive works when Webex answers


def test_frames_that_are_not_events_are_acknowledged_and_skipped(listening, sandbox, alice, dm):
    for raw in ("not json", "[]", {"id": "f-1", "data": {"eventType": "conversation.activity",
                                                         "activity": {"verb": "post"}}},
                {"id": "f-2", "data": {"eventType": "presence.update"}}):
        sandbox.mercury_emit_raw(raw)
    sandbox.post_message(alice, dm, "help")
    listening.wait_for_bot_messages(dm, 1)
    assert {"f-1", "f-2"} <= set(sandbox.acks)


class OutageStore(SqliteStore):
    """A real SQLite store whose every call fails while ``down`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down = threading.Event()

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in ("down", "path") \
                and object.__getattribute__(self, "down").is_set():
            raise StoreUnavailable("OperationalError: disk I/O error")
        return object.__getattribute__(self, name)


@contextlib.contextmanager
def listening_on(store: OutageStore, settings: Settings) -> Iterator[BotService]:
    service = BotService(settings, store=store)
    service.start()
    try:
        assert service.listener is not None and service.listener.wait_until_connected(10)
        yield service
    finally:
        service.stop()


def test_frames_wait_unacknowledged_through_a_storage_outage(sandbox, tmp_path, alice, dm):
    store = OutageStore(tmp_path / "outage.sqlite3")
    with listening_on(store, listening_settings(sandbox, tmp_path)) as service:
        listener = service.listener
        store.down.set()
        sandbox.post_message(alice, dm, "help")
        sandbox.post_message(alice, dm, "help again")
        sandbox.wait_for(lambda: len(sandbox.frames_sent) == 2)
        poll_until(lambda: listener.counts["storage unavailable"] >= 2, timeout=10)
        assert not sandbox.acks  # neither frame: nothing acknowledged that is not stored
        store.down.clear()
        sandbox.wait_for(sandbox.mercury_settled, timeout=10)
        assert service.wait_until_idle(timeout=10)
        bot_id = sandbox.bot["id"]
        assert len([m for m in sandbox.messages_in(dm) if m["personId"] == bot_id]) == 2
        assert listener.counts["accepted"] == 2


def test_a_restart_stores_nothing_twice_and_says_what_it_missed(
    sandbox, tmp_path, alice, dm, caplog
):
    settings = listening_settings(sandbox, tmp_path)
    with running(sandbox, settings) as bot:
        sandbox.post_message(alice, dm, "help")
        bot.wait_for_bot_messages(dm, 1)
        bot.idle()
    # While no listener runs: a 1:1 message (listable) and a card submit (not listable).
    form = sandbox.messages_in(dm)[-1]
    sandbox.post_message(alice, dm, "help once more")
    sandbox.submit_card(alice, form["id"], {ids.ACTION: ids.ACTION_SHOW_FORM})
    assert len(sandbox.mercury_missed) == 2
    with caplog.at_level(logging.INFO, logger="bot.listen"), running(sandbox, settings) as bot:
        bot.wait_for_bot_messages(dm, 2)
        counts = bot.service.listener.counts
        poll_until(lambda: counts["caught up"] == 1, timeout=10)
        assert replies(bot, dm) == 2  # the first help is not answered again
    assert "Webex does not replay what it sent meanwhile" in caplog.text
    assert "Card submits" in caplog.text and "caught up after the gap" in caplog.text
    assert len(sandbox.devices) == 1


def test_a_second_listener_of_the_bot_stands_by(sandbox, tmp_path, alice, dm):
    settings = listening_settings(sandbox, tmp_path)
    with running(sandbox, settings) as first:
        second = BotService(replace(settings, listen=quick_listen(sandbox, lease_seconds=0.6)))
        listener = second.listener
        second.start()
        try:
            poll_until(lambda: listener.state == "standing by", timeout=10)
            sandbox.post_message(alice, dm, "help")
            first.wait_for_bot_messages(dm, 1)
            assert len(sandbox.mercury_handshakes) == 1
        finally:
            second.stop()


def test_a_dead_worker_processs_websocket_lease_is_freed_for_the_next_listener(
    sandbox, tmp_path, alice, dm
):
    """``release-jobs`` frees the lease the dead process's listener held (60 s left on it), and
    only that one: the next listener takes the socket at its next look, not after the lease."""
    settings = listening_settings(sandbox, tmp_path, listen=quick_listen(sandbox))
    successor = BotService(settings, role="worker", worker_owner="host:next")
    store = successor.store
    store.set(LEASE.key(), "listener-host:dead", 60)
    release_lease_of(store, "host:someone-alive")
    assert store.get(LEASE.key()) == "listener-host:dead"
    successor.start()
    try:
        listener = successor.listener
        poll_until(lambda: listener.state == "standing by", timeout=10)
        release_lease_of(store, "host:dead")
        assert listener.wait_until_connected(timeout=10), "the freed lease was not taken"
        assert store.get(LEASE.key()) == "listener-host:next"
        sandbox.post_message(alice, dm, "help")
        RunningBot(sandbox, successor, "").wait_for_bot_messages(dm, 1)
    finally:
        successor.stop()


def test_the_websocket_goes_through_the_https_proxy(sandbox, tmp_path, alice, dm):
    with connect_proxy() as proxy:
        listen = quick_listen(sandbox, proxy=f"http://bot:proxy-pw@127.0.0.1:{proxy.port}")
        with running(sandbox, listening_settings(sandbox, tmp_path, listen=listen)) as bot:
            sandbox.post_message(alice, dm, "help")
            bot.wait_for_bot_messages(dm, 1)
    ws_port = urlsplit(sandbox.mercury_url).port
    assert proxy.requests == [f"CONNECT 127.0.0.1:{ws_port} HTTP/1.1"]
    assert proxy.authorizations == ["Basic " + base64.b64encode(b"bot:proxy-pw").decode()]


def asked(handshake: dict[str, Any]) -> dict[str, list[str]]:
    return parse_qs(urlsplit(handshake["path"]).query)


@pytest.mark.parametrize("mode", ["asked", "always", "never"])
def test_buffer_states_are_asked_for_and_not_waited_on_forever(sandbox, tmp_path, alice, dm,
                                                               mode):
    """The socket asks what the JS SDK asks; with no buffer state at all (Webex might send it
    only when asked, or not at all) the listener still listens, after a bounded wait."""
    sandbox.mercury_buffer_state = mode
    listen = quick_listen(sandbox, open_timeout=0.5)
    with running(sandbox, listening_settings(sandbox, tmp_path, listen=listen)) as bot:
        sandbox.post_message(alice, dm, "help")
        bot.wait_for_bot_messages(dm, 1)
        [handshake] = sandbox.mercury_handshakes
        assert asked(handshake) == {"outboundWireFormat": ["text"], "bufferStates": ["true"],
                                    "aliasHttpStatus": ["true"]}
        assert bot.service.listener.counts["reconnects"] == 0


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.listen.listener"
            and r.levelno == logging.ERROR and "WEBEX_BOT_TOKEN" in r.getMessage()]


def test_a_token_revoked_while_listening_is_an_error_per_attempt_long_apart(
    sandbox, tmp_path, alice, dm, caplog
):
    listen = quick_listen(sandbox, refused_wait=1.0)
    with caplog.at_level(logging.INFO, logger="bot.listen"), \
            running(sandbox, listening_settings(sandbox, tmp_path, listen=listen)) as bot:
        sandbox.revoke_token()
        revoked_at = time.monotonic()
        poll_until(lambda: len(refusals(caplog)) >= 3, timeout=10)
        took = time.monotonic() - revoked_at
        attempts = len(sandbox.mercury_handshakes) - 1
        assert attempts == len(refusals(caplog)) - 1  # one line per attempt, no more
        assert took >= 2 * 0.5  # at least half of refused_wait between attempts (jitter)
        assert "token on the websocket (4401)" in refusals(caplog)[0]
        sandbox.clear_faults()  # a new token (as if): listening again, nothing lost
        sandbox.post_message(alice, dm, "help")
        bot.wait_for_bot_messages(dm, 1)


@pytest.mark.parametrize(("code", "meaning"), [(4400, "service account"),
                                               (4403, "not entitled")])
def test_a_close_no_reconnect_mends_says_what_it_means(sandbox, tmp_path, caplog, code,
                                                       meaning):
    listen = quick_listen(sandbox, refused_wait=0.4)
    with running(sandbox, listening_settings(sandbox, tmp_path, listen=listen)), \
            caplog.at_level(logging.ERROR, logger="bot.listen.listener"):
        sandbox.close_mercury(code, "")
        sandbox.wait_for(lambda: len(sandbox.mercury_handshakes) == 2
                         and sandbox.mercury_connected(), timeout=5)
    [said] = refusals(caplog)
    assert f"({code})" in said and meaning in said


def test_listen_with_a_refused_token_says_so_in_one_line_and_exits_2(sandbox, tmp_path):
    env = {**os.environ, "WEBEX_BOT_TOKEN": "not-the-bots-token",
           "WEBEX_API_URL": sandbox.webex_base_url, "U2C_URL": sandbox.u2c_url,
           "STORAGE_URL": f"sqlite:///{tmp_path}/bot.sqlite3", "LOG_LEVEL": "WARNING",
           "MEETING_KEYS": MEETING_KEYS}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bot", "listen"], env=env, timeout=30,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and time.monotonic() - started < 15
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: WEBEX_BOT_TOKEN: Webex refused the bot's token (HTTP 401)")
    assert "not-the-bots-token" not in done.stderr


def statuses(box: Sandbox) -> list[int]:
    return [handshake["status"] for handshake in box.mercury_handshakes]


def test_a_handshake_refused_for_the_token_is_not_retried_at_once(sandbox, tmp_path, caplog):
    listen = quick_listen(sandbox, refused_wait=0.4)
    with running(sandbox, listening_settings(sandbox, tmp_path, listen=listen)), \
            caplog.at_level(logging.ERROR, logger="bot.listen.listener"):
        sandbox.mercury_fault("refuse", code=403)
        sandbox.close_mercury(1011, "")
        sandbox.wait_for(lambda: statuses(sandbox) == [101, 403, 101]
                         and sandbox.mercury_connected(), timeout=5)
    [said] = refusals(caplog)
    assert "when opening the websocket (HTTP 403)" in said
