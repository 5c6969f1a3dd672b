"""`python -m bot abandoned`: what an operator sees of events the bot gave up on.

It reads the store alone: no token needed, the store it read is printed (a relative SQLite path
resolved), "none" when there are none, and a store that is not there is said, not created.
"""

import os
import subprocess
import sys
from pathlib import Path

from bot.jobs.storage import open_store


def run_abandoned(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "WEBEX_BOT_TOKEN"}
    return subprocess.run([sys.executable, "-m", "bot", "abandoned"],
                          env={**env, "STORAGE_URL": url}, cwd=cwd,
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

    result = run_abandoned(url, tmp_path)

    assert result.returncode == 0, result.stderr
    heading, line = result.stdout.splitlines()
    assert heading == f"abandoned events in {tmp_path}/bot.sqlite3: 1, newest first"
    assert "poison-1" in line and "messages" in line and "attempts 1" in line
    assert line.endswith("too many attempts") and "payload" not in line


def test_nothing_abandoned_says_none_and_which_store(tmp_path: Path) -> None:
    """An empty store, read without any token: exit 0, its path, and "none"."""
    open_store(f"sqlite:///{tmp_path}/empty.sqlite3").close()
    result = run_abandoned(f"sqlite:///{tmp_path}/empty.sqlite3", tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"abandoned events in {tmp_path}/empty.sqlite3: none\n"


def test_a_relative_path_is_resolved_and_a_missing_store_is_not_created(tmp_path: Path) -> None:
    """``sqlite:///data/...`` from the deployment's directory reads its store; from another
    directory it says where it looked, exit 2, and creates nothing there."""
    (tmp_path / "app" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    open_store(f"sqlite:///{tmp_path}/app/data/bot.sqlite3").close()

    found = run_abandoned("sqlite:///data/bot.sqlite3", tmp_path / "app")
    assert found.stdout == f"abandoned events in {tmp_path}/app/data/bot.sqlite3: none\n"

    missing = run_abandoned("sqlite:///data/bot.sqlite3", tmp_path / "elsewhere")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == (f"error: STORAGE_URL: there is no store at {tmp_path}/elsewhere/"
                              "data/bot.sqlite3 (a relative sqlite:/// path is read from the "
                              "directory the command runs in)\n")
    assert list((tmp_path / "elsewhere").iterdir()) == []
