"""Backing up the SQLite store while the bot runs, as the README's runbook says: the copy is a
consistent snapshot however many processes are accepting events while it is taken, and the bot
opens it as it is (a restore is putting the copy in the store's place).

Each writer process accepts its events in order, one committed transaction each, so a consistent
copy holds, of each writer, exactly its first k events: a gap would be a torn copy.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.storage import open_store
from bot.jobs.storage.contract import STORE_VERSION
from bot.jobs.storage.sqlite import SqliteStore

WRITERS = 2  # as gunicorn's two web processes
PREFILL = 1500  # a store of some megabytes, so the copy takes a while
PAYLOAD = "x" * 4000


def vacuum_into_with_the_cli(source: Path, copy: Path) -> None:
    """The runbook's command: one read transaction, whatever is written meanwhile."""
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command is not installed (apt-get install sqlite3)")
    subprocess.run(["sqlite3", str(source), f"VACUUM INTO '{copy}'"], check=True, timeout=60)


def python_backup_api(source: Path, copy: Path) -> None:
    """The online backup API in one step (Python's default), for hosts without the CLI."""
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dest:
        src.backup(dest)
    src.close()
    dest.close()


def accept_in_order(path: Path, writer: int, started: Event, stop: Event, count: Any) -> None:
    """Accept events writer-n-0, writer-n-1, ... until told to stop, as a web process would."""
    store = SqliteStore(path)
    number = 0
    while not stop.is_set():
        assert store.accept(f"writer-{writer}-{number}", "messages", PAYLOAD)
        number += 1
        count.value = number
        if number == 50:
            started.set()
    store.close()


@pytest.mark.parametrize("back_up", [vacuum_into_with_the_cli, python_backup_api])
def test_a_backup_taken_while_events_are_accepted_is_consistent_and_opens(
    back_up: Callable[[Path, Path], None], tmp_path: Path
) -> None:
    source, copy = tmp_path / "bot.sqlite3", tmp_path / "backup.sqlite3"
    store = SqliteStore(source)
    for number in range(PREFILL):
        store.accept(f"before-{number}", "messages", PAYLOAD)
    store.close()

    context = multiprocessing.get_context("fork")
    stop = context.Event()
    started = [context.Event() for _ in range(WRITERS)]
    counts = [context.Value("i", 0) for _ in range(WRITERS)]
    writers = [context.Process(target=accept_in_order,
                               args=(source, n, started[n], stop, counts[n]))
               for n in range(WRITERS)]
    for process in writers:
        process.start()
    try:
        assert all(event.wait(30) for event in started)
        before = sum(count.value for count in counts)
        back_up(source, copy)
        during = sum(count.value for count in counts) - before
    finally:
        stop.set()
        for process in writers:
            process.join(30)
    assert [process.exitcode for process in writers] == [0] * WRITERS
    assert during > 0, "no event was accepted while the copy was taken: not under load"

    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA user_version").fetchone()[0] == STORE_VERSION
        ids = [row[0] for row in db.execute("SELECT event_id FROM jobs")]
        assert {len(payload) for (payload,) in db.execute("SELECT payload FROM jobs")} == {
            len(PAYLOAD)}
    db.close()
    numbers: dict[str, list[int]] = {}
    for event_id in ids:
        who, number = re.fullmatch(r"(.+)-(\d+)", event_id).groups()  # type: ignore[union-attr]
        numbers.setdefault(who, []).append(int(number))
    assert sorted(numbers["before"]) == list(range(PREFILL))
    for writer in range(WRITERS):
        taken = sorted(numbers.get(f"writer-{writer}", []))
        assert taken == list(range(len(taken))), f"writer {writer}: a gap in the copy"
        assert 50 <= len(taken) < counts[writer].value  # the snapshot is of a moment mid-flood

    restored = open_store(f"sqlite:///{copy}")
    try:
        assert not restored.accept("before-0", "messages", PAYLOAD)  # dedupe survives
        job = restored.claim("restored-worker", 60)
        assert job is not None and job.event_id == "before-0" and job.payload == PAYLOAD
        assert restored.backlog() == len(ids)
    finally:
        restored.close()
