"""A worker killed after it reached the guests: the retry sends them nothing again (slow).

The bot runs as deployed (``python -m bot serve``); the post of the report is held back, so the
worker is killed while posting it, after the links message, the email and the text message went
out. The job's lease runs out, the restarted worker takes the event again, and the outbox's
records say the links, the email and the SMS are done: only the report goes out, once.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from bot.devtools.as_deployed import launched_bot, sandbox_env
from bot.devtools.sandbox import Fault, Sandbox
from bot.jobs.storage import open_store
from tests.support.faults import poll_until

pytestmark = pytest.mark.slow
SECRET = "guest-crash-tests-secret-5f1a"


def test_a_worker_killed_after_reaching_the_guests_sends_them_nothing_again(
    tmp_path: Path,
) -> None:
    with Sandbox(seed=5) as box:
        env = sandbox_env(
            box, f"sqlite:///{tmp_path}/bot.sqlite3", SECRET, JOB_LEASE_SECONDS="2",
            SMTP_URL=box.smtp_url, MAIL_FROM="instant-connect@clinic.example.com",
            SMTP_CA_FILE=box.smtp_ca_file, TWILIO_ACCOUNT_SID=box.twilio_account_sid,
            TWILIO_AUTH_TOKEN=box.twilio_auth_token, TWILIO_FROM=box.twilio_from,
            TWILIO_API_URL=box.twilio_api_url, DEFAULT_PHONE_REGION="FR",
        )
        with launched_bot(env, workers=1, log_dir=tmp_path) as bot:
            [worker] = poll_until(bot.worker_pids, timeout=30)
            box.register_webhook(bot.webhook_url, SECRET, "messages", "created")
            alice = box.add_person("alice@clinic.example.com", "Alice Doctor")
            dm = box.direct_room(alice)
            box.smtp_fault("slow", seconds=1.5)  # time to hold the report's post, below
            box.post_message(alice, dm, "meet Consultation to=zoe@example.org,+33612345678")
            box.wait_for(lambda: len(box.messages_in(dm)) >= 2, timeout=30)  # the links
            # The report's post: held four seconds, then its connection dropped (no message).
            box.add_fault(Fault("POST", "/v1/messages", latency=4.0, drop=True, times=1))
            box.wait_for(lambda: box.mail() and box.sms(), timeout=30)
            # The SMS's record is written milliseconds after Twilio answers (killed inside that
            # gap, the retry would text again: nothing can ask Twilio). A second later the
            # worker is surely inside the held post.
            time.sleep(1.0)
            os.kill(worker, signal.SIGKILL)
            box.clear_faults()
            poll_until(lambda: [pid for pid in bot.worker_pids() if pid != worker], timeout=30)

            def reported() -> list[dict[str, object]]:
                return [m for m in box.messages_in(dm)
                        if str(m.get("markdown", "")).startswith("**Guest links")]

            box.wait_for(reported, timeout=30)
            store = open_store(f"sqlite:///{tmp_path}/bot.sqlite3")
            poll_until(lambda: store.backlog() == 0, timeout=30)  # the retry is over
            store.close()
    assert len(box.mail()) == 1 and len(box.sms()) == 1
    assert len(reported()) == 1
    links = [m for m in box.messages_in(dm)
             if str(m.get("markdown", "")).startswith("**Meeting links")]
    assert len(links) == 1
