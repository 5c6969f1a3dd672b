"""Under ``python -m bot serve`` every line is JSON, gunicorn's own included, with its time in
ISO 8601 UTC: what a log shipper reads without a second parser."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bot.devtools.as_deployed import launched_bot, sandbox_env
from bot.devtools.sandbox import Sandbox
from tests.conftest import WEBHOOK_SECRET


def test_every_line_serve_writes_is_json_gunicorns_included(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = sandbox_env(sandbox, f"sqlite:///{tmp_path}/bot.sqlite3", WEBHOOK_SECRET,
                      WORKER_PROCESSES="1", LOG_LEVEL="INFO")
    started = datetime.now(UTC)
    with launched_bot(env, workers=1, log_dir=tmp_path) as bot:
        forged = requests.post(bot.webhook_url, data=b"{}", timeout=5,
                               headers={"X-Spark-Signature": "0" * 40})
        assert forged.status_code == 401
        # Ready once a worker process heartbeats: stopped any sooner, one still importing dies
        # of the signal before it can say it stops.
        deadline = time.monotonic() + 30
        while requests.get(bot.url + "/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "no worker process came up"
            time.sleep(0.05)
        log_path = bot.log_path
    text = log_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    entries: list[dict[str, Any]] = []
    for line in lines:
        entry = json.loads(line)  # fails on any line that is not JSON
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry)
        written = datetime.fromisoformat(entry["time"])
        assert entry["time"].endswith("Z") and written.utcoffset() == timedelta(0)
        assert started - timedelta(seconds=5) <= written <= datetime.now(UTC)
        entries.append(entry)
    said = [(entry["logger"], entry["message"]) for entry in entries]
    assert any(logger == "gunicorn.error" and message.startswith("Starting gunicorn")
               for logger, message in said), said
    assert any(logger == "gunicorn.error" and message.startswith("Booting worker")
               for logger, message in said)
    assert any("missing or wrong signature" in message for _, message in said)
    # At INFO the SDK's platform line is not written; without a websocket none is closed.
    assert not any(message.startswith("User-Agent") for _, message in said)
    assert not any("websocket" in message for _, message in said), said
    assert any(message == "stopping: letting the workers finish" for _, message in said)
