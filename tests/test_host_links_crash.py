"""A worker killed while it posts the host links: the person gets one set, never two (slow).

The bot runs as deployed (``python -m bot serve``); Alice asks for a meeting in a group space, so
her host links go to her 1:1 space, addressed by her person id. That post is held by the sandbox
and the worker is killed meanwhile, in the two ways it can happen: Webex created the message and
the worker never learned its id (never twice), or the post had not reached Webex (still once).
The restarted worker retries the event; the outbox looks in Alice's 1:1 space before posting.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bot.devtools.as_deployed import launched_bot, sandbox_env
from bot.devtools.sandbox import Fault, Sandbox
from bot.jobs.storage import open_store
from tests.support.faults import poll_until

pytestmark = pytest.mark.slow
SECRET = "host-links-crash-tests-secret-2c7e"
HELD = 4.0  # seconds the post of the host links is held: the worker is killed within them


def starts_with(box: Sandbox, room_id: str, heading: str) -> list[dict[str, object]]:
    return [m for m in box.messages_in(room_id) if str(m.get("markdown", "")).startswith(heading)]


@pytest.mark.parametrize("created", [True, False], ids=["created-never-twice",
                                                        "never-reached-still-once"])
def test_a_worker_killed_mid_post_of_the_host_links_sends_them_once(
    tmp_path: Path, created: bool
) -> None:
    with Sandbox(seed=19) as box:
        url = f"sqlite:///{tmp_path}/bot.sqlite3"
        env = sandbox_env(box, url, SECRET, JOB_LEASE_SECONDS="2")
        with launched_bot(env, workers=1, log_dir=tmp_path) as bot:
            [worker] = poll_until(bot.worker_pids, timeout=30)
            box.register_webhook(bot.webhook_url, SECRET, "messages", "created")
            alice = box.add_person("alice@clinic.example.com", "Alice Doctor")
            clinic = box.add_room("Clinic", [alice])
            dm = box.direct_room(alice)["id"]
            # The bot's first post is the host links; held, then its connection dropped.
            box.add_fault(Fault("POST", "/v1/messages", latency=HELD, drop=True, times=1,
                                after=created))
            box.post_message(alice, clinic, "meet Consultation")
            box.wait_for(lambda: not box.faults, timeout=30)  # the post is in, and held
            if created:
                box.wait_for(lambda: starts_with(box, dm, "**Host links"), timeout=5)
            else:
                assert starts_with(box, dm, "**Host links") == []
            os.kill(worker, signal.SIGKILL)
            poll_until(lambda: [pid for pid in bot.worker_pids() if pid != worker], timeout=30)
            box.wait_for(lambda: starts_with(box, clinic["id"], "**Meeting links"), timeout=30)
            store = open_store(url)
            poll_until(lambda: store.backlog() == 0, timeout=30)  # the retry is over
            store.close()
            host_links = starts_with(box, dm, "**Host links")
            lookups = box.requests_matching("GET", "/v1/messages/direct")
    assert len(host_links) == 1
    assert len(starts_with(box, clinic["id"], "**Meeting links")) == 1
    assert len(lookups) == 1  # the retry looked in Alice's 1:1 space, once
