"""The listener (``python -m bot listen``, as deployed) killed with SIGKILL mid-stream and started
again: every message is answered once, whether Webex resends unacknowledged frames or not.

Figures (``tests/.fault-figures/listen-crash-*.json``): people's messages sent, frames the
sandbox sent (resends included), frames acknowledged, frames missed while no socket was open,
messages answered, lost (0) and answered twice (0).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.ids import raw_uuid
from tests.support.faults import poll_until, report
from tests.support.keys import MEETING_KEYS

pytestmark = pytest.mark.slow

PEOPLE = 10
MESSAGES = 60
KILL_AFTER_ACKS = 15


@contextlib.contextmanager
def listen_process(box: Sandbox, storage_url: str, log_path: Path) -> Iterator[Any]:
    """``python -m bot listen`` against the sandbox, its log in ``log_path``."""
    env = {**os.environ, "WEBEX_BOT_TOKEN": box.bot_token, "WEBEX_API_URL": box.webex_base_url,
           "IC_BROKER_URL": box.broker_url, "U2C_URL": box.u2c_url, "STORAGE_URL": storage_url,
           "JOB_LEASE_SECONDS": "5", "WORKER_THREADS": "4", "LOG_LEVEL": "INFO",
           "MEETING_KEYS": MEETING_KEYS}
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "listen"], env=env,
                                   stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def person_frames(box: Sandbox, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames of people's messages (not of the bot's own replies)."""
    bot = raw_uuid(box.bot["id"])
    return [f for f in frames if f["data"]["activity"]["actor"]["entryUUID"] != bot]


@pytest.mark.parametrize("replay", [True, False], ids=["webex-resends", "nothing-resent"])
def test_the_listener_killed_mid_stream_loses_nothing_and_answers_once(tmp_path, replay):
    with Sandbox(seed=31) as box:
        box.mercury_replay = replay
        people = [box.add_person(f"p{n}@clinic.example.com", f"Person {n}") for n in range(PEOPLE)]
        rooms = [box.direct_room(person) for person in people]
        storage_url = f"sqlite:///{tmp_path}/listen.sqlite3"
        log_path = tmp_path / "listen.log"
        sent: list[str] = []

        def stream() -> None:
            for n in range(MESSAGES):
                message = box.post_message(people[n % PEOPLE], rooms[n % PEOPLE], f"help {n}")
                sent.append(message["id"])
                time.sleep(0.05)

        with listen_process(box, storage_url, log_path) as first:
            box.wait_for(box.mercury_connected, timeout=30)
            streaming = threading.Thread(target=stream)
            streaming.start()
            box.wait_for(lambda: len(box.acks) >= KILL_AFTER_ACKS, timeout=30)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = len(sent)
        with listen_process(box, storage_url, log_path):
            box.wait_for(box.mercury_connected, timeout=40)
            streaming.join(timeout=60)
            bot_id = box.bot["id"]

            def answered() -> list[int]:
                return [len([m for m in box.messages_in(room) if m["personId"] == bot_id])
                        for room in rooms]

            expected = [len(sent[i::PEOPLE]) for i in range(PEOPLE)]
            with contextlib.suppress(TimeoutError):
                poll_until(lambda: answered() == expected, timeout=60)
            replies = answered()
        figures = {
            "sent": len(sent), "sent_before_kill": killed_at,
            "frames_sent": len(person_frames(box, box.frames_sent)),
            "frames_acknowledged": len(set(box.acks)),
            "missed_while_down": len(person_frames(box, box.mercury_missed)),
            "answered": sum(min(r, e) for r, e in zip(replies, expected, strict=True)),
            "lost": sum(max(e - r, 0) for r, e in zip(replies, expected, strict=True)),
            "answered_twice": sum(max(r - e, 0) for r, e in zip(replies, expected, strict=True)),
            "devices": len(box.devices),
        }
        report(f"listen-crash-{'resends' if replay else 'no-resend'}", figures)
        log = log_path.read_text(errors="replace")
        assert figures["lost"] == 0 and figures["answered_twice"] == 0, log[-3000:]
        assert figures["devices"] == 1
        assert "Webex does not replay what it sent meanwhile" in log
