"""Storage goes away mid-flood and comes back: the bot catches up alone, each event done once.

The bot runs as deployed (``python -m bot serve``) on each engine. While events arrive and
workers are in the middle of jobs, the storage is taken away for a few seconds: a real
redis-server is shut down and started again (AOF on, so it comes back with what it held), or
refuses writes (MISCONF) and accepts them again, or the tmpfs under the SQLite file is filled up
and freed again (root only: the test skips otherwise). Deliveries refused meanwhile are
redelivered as Webex would, with a pause. Outcomes are counted from the sandbox. Run with
``python -m pytest -m slow``.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.devtools.sandbox import Delivery
from tests.support.faults import (
    Fleet,
    Planned,
    RedisProcess,
    count_outcomes,
    fleet,
    log_lines,
    redis_url_for,
    report,
)
from tests.support.outages import SnapshotsFail, fill, free, small_tmpfs

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 4.0
REDELIVERY_PAUSE = 0.3  # Webex waits between redeliveries; so does this test
REDELIVERIES = 300  # at REDELIVERY_PAUSE: half a minute or more of outage is waited out
OUTCOME_TIMEOUT = 90.0
SEND_LATENCY = 0.2  # workers are mid-job when storage goes


class Outage:
    """Takes the storage away and gives it back; ``during`` runs while it is away."""

    def __init__(self, take: Callable[[], None], give: Callable[[], None]) -> None:
        self._take, self._give = take, give
        self.readiness_during: list[int] = []
        self.started = threading.Event()
        self.over = threading.Event()

    def run(self, crew: Fleet) -> None:
        """Away for OUTAGE_SECONDS, asking each instance's /readyz meanwhile; then back."""
        self._take()
        self.started.set()
        deadline = time.monotonic() + OUTAGE_SECONDS
        try:
            while time.monotonic() < deadline:
                for bot in crew.bots:
                    with contextlib.suppress(requests.RequestException):
                        reply = requests.get(bot.url + "/readyz", timeout=5)
                        self.readiness_during.append(reply.status_code)
                time.sleep(0.5)
        finally:
            self._give()
            self.over.set()


PROCESSES = 3  # of one instance: two web processes and the worker process, each says it once


def flood_through_an_outage(crew: Fleet, outage: Outage, seed: int) -> dict[str, Any]:
    """Deliver 50 events, taking storage away once a third are in; count each one's outcome."""
    forms = crew.forms(10)
    events = [crew.help_event() for _ in range(40)]
    events += [crew.submit_event(person, form_id, f"Outage form {number:02d}")
               for number, (person, form_id) in enumerate(forms)]
    random.Random(seed).shuffle(events)
    crew.sandbox.fail("POST", "/v1/messages", status=None, latency=SEND_LATENCY)
    accepted_before = threading.Semaphore(0)
    third = len(events) // 3

    def deliver(event: Planned) -> list[Delivery]:
        made = crew.deliver_until_accepted(event, pause=REDELIVERY_PAUSE,
                                           deliveries=REDELIVERIES)
        accepted_before.release()
        return made

    outage_thread = threading.Thread(target=lambda: (
        [accepted_before.acquire() for _ in range(third)], outage.run(crew)), daemon=True)
    outage_thread.start()
    with ThreadPoolExecutor(4) as pool:
        deliveries = list(pool.map(deliver, events))
    outage_thread.join(timeout=OUTAGE_SECONDS + 30)
    assert outage.over.is_set(), "the outage never ran: the test proved nothing"
    assert all(200 <= made[-1].status < 300 for made in deliveries), "an event never got in"
    rooms = {event.room_id for event in events}
    crew.sandbox.wait_for(lambda: all(crew.bot_messages(room) for room in rooms),
                          OUTCOME_TIMEOUT)
    crew.wait_idle(OUTCOME_TIMEOUT)
    ledger = count_outcomes(crew, events)
    ready_after = [requests.get(bot.url + "/readyz", timeout=10) for bot in crew.bots]
    figures = {
        "events": len(events),
        "outage_seconds": OUTAGE_SECONDS,
        "refused_deliveries": sum(d.status >= 500 or d.status == 0
                                  for made in deliveries for d in made),
        "readyz_during": sorted(set(outage.readiness_during)),
        "readyz_after": [reply.status_code for reply in ready_after],
        "went_away_lines": log_lines(crew.bots, "storage went away"),
        "back_lines": log_lines(crew.bots, "storage is back"),
        "dead_threads": log_lines(crew.bots, "Exception in thread"),
        **ledger.figures(),
    }
    ledger.assert_exactly_once()
    return figures


def assert_caught_up(figures: dict[str, Any], outages: int) -> None:
    """Ready again, every thread alive, each outage said once per process each way (at most
    ``outages`` lines: not one per thread per poll), and said to be over (a process that wrote
    nothing since may not have noticed yet)."""
    assert figures["refused_deliveries"], "no delivery was refused: storage never went away"
    assert set(figures["readyz_after"]) == {200}, figures
    assert figures["dead_threads"] == 0, figures
    assert 1 <= figures["went_away_lines"] <= outages, figures
    assert 1 <= figures["back_lines"] <= figures["went_away_lines"], figures


def test_redis_shut_down_and_started_again_mid_flood(tmp_path: Path) -> None:
    """Redis stops for 4 s under load: 503s meanwhile, then every event done exactly once."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(tmp_path)
    server.start()
    try:
        with fleet(tmp_path, instances=1, workers=2, seed=88,
                   storage_url=redis_url_for(server.url), JOB_LEASE_SECONDS="10") as crew:
            outage = Outage(server.stop, server.start)
            figures = flood_through_an_outage(crew, outage, seed=88)
    finally:
        server.stop()
    report("outage-redis", figures)
    assert 503 in figures["readyz_during"], figures
    assert_caught_up(figures, outages=PROCESSES)


def test_redis_refusing_writes_mid_flood_is_said_once_per_process(tmp_path: Path) -> None:
    """Redis refuses writes for 4 s under load (MISCONF: its snapshot cannot be saved), while
    reads and scripts that write nothing still work: each process says so once, each way."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(tmp_path, "--save", "3600 1")
    server.start()
    snapshots = SnapshotsFail(server.url, tmp_path)
    try:
        with fleet(tmp_path, instances=1, workers=2, seed=90,
                   storage_url=redis_url_for(server.url), JOB_LEASE_SECONDS="10") as crew:
            figures = flood_through_an_outage(crew, Outage(snapshots.start, snapshots.stop),
                                              seed=90)
    finally:
        snapshots.close()
        server.stop()
    report("outage-redis-misconf", figures)
    assert 503 in figures["readyz_during"], figures
    assert_caught_up(figures, outages=PROCESSES)


def test_sqlite_disk_fills_up_and_frees_again_mid_flood(tmp_path: Path) -> None:
    """The disk under SQLite is full for 4 s under load: every event still done exactly once."""
    with small_tmpfs(tmp_path / "disk", "16m") as disk, fleet(
            tmp_path, instances=1, workers=2, seed=89,
            storage_url=f"sqlite:///{disk}/bot.sqlite3", JOB_LEASE_SECONDS="10") as crew:
        outage = Outage(lambda: fill(disk), lambda: free(disk))
        figures = flood_through_an_outage(crew, outage, seed=89)
    report("outage-sqlite-disk-full", figures)
    # A full disk lets through what writes nothing (and may let a write reuse WAL space): the
    # outage ends only when the probe, a write of its own, succeeds.
    assert_caught_up(figures, outages=PROCESSES)
