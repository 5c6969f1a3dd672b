"""`python -m bot abandoned`: what an operator sees of events the bot gave up on."""

import os
import subprocess
import sys
from pathlib import Path

from bot.jobs.storage import open_store


def run_abandoned(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEBEX_BOT_TOKEN": "token-for-the-cli", "STORAGE_URL": url}
    return subprocess.run([sys.executable, "-m", "bot", "abandoned"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_abandoned_events_are_listed_with_why_and_nothing_else(tmp_path: Path) -> None:
    """An abandoned job shows its id, kind, attempts and error; a finished one does not."""
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    store = open_store(url)
    for event_id in ("poison-1", "fine-1"):
        store.accept(event_id, "messages", '{"secret": "payload"}')
    poison = store.claim("worker-a", 30)
    fine = store.claim("worker-a", 30)
    assert poison is not None and fine is not None
    store.abandon(poison.event_id, "worker-a", "too many attempts")
    store.complete(fine.event_id, "worker-a")
    store.close()

    result = run_abandoned(url)

    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert "poison-1" in line and "messages" in line and "attempts 1" in line
    assert line.endswith("too many attempts") and "payload" not in line


def test_nothing_abandoned_prints_nothing(tmp_path: Path) -> None:
    """An empty store: exit 0 and no lines."""
    result = run_abandoned(f"sqlite:///{tmp_path}/empty.sqlite3")
    assert (result.returncode, result.stdout) == (0, "")
