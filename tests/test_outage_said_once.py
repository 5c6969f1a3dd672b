"""An outage is said once each way per process, even while some operations still succeed.

Storage that refuses writes still lets through what writes nothing: a claim of an empty queue, a
fact that is already there. Redis refusing writes (``MISCONF``: a real redis-server whose
snapshot cannot be saved) and SQLite on a full disk (a real tmpfs, filled; root only) are each
polled as an idle process polls them: those succeed, the heartbeat and the readiness probe fail.
Only a write that surely wrote says storage is back.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.jobs.storage import Store, StoreUnavailable, open_store
from tests.support.faults import RedisProcess
from tests.support.outages import SnapshotsFail, fill, free, small_tmpfs

ROUNDS = 10
HEALTH = "bot.jobs.storage.health"
Heal = Callable[[], None]


@pytest.fixture
def redis_refusing_writes(tmp_path: Path) -> Iterator[tuple[Store, Callable[[], Heal]]]:
    """A Redis store, and how to make its server refuse writes (MISCONF) and accept them again."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    (tmp_path / "redis").mkdir()
    server = RedisProcess(tmp_path / "redis", "--save", "3600 1")
    server.start()
    store = open_store(server.url)
    snapshots = SnapshotsFail(server.url, tmp_path / "redis")

    def refuse() -> Heal:
        snapshots.start()
        return snapshots.stop

    yield store, refuse
    store.close()
    snapshots.close()
    server.kill()


@pytest.fixture
def sqlite_on_a_full_disk(tmp_path: Path) -> Iterator[tuple[Store, Callable[[], Heal]]]:
    """A SQLite store on a small tmpfs, and how to fill the disk up and free it again."""
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        store = open_store(f"sqlite:///{disk}/bot.sqlite3")

        def refuse() -> Heal:
            fill(disk)
            return lambda: free(disk)

        yield store, refuse
        store.close()


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the store said about its health, each line's first words."""
    return [r.getMessage().split(":")[0] for r in caplog.records if r.name == HEALTH]


def poll_as_an_idle_process(store: Store) -> None:
    """One round of what an idle worker process and a web process ask of storage."""
    assert store.claim("worker-1", 10) is None  # an empty queue: nothing to write
    assert store.put_if_absent("known", "again") == "before"  # already there: nothing either
    with pytest.raises(StoreUnavailable):
        store.set("worker-alive", "worker-1", 10)  # the heartbeat
    with pytest.raises(StoreUnavailable):
        store.ping()  # /readyz


@pytest.mark.parametrize("engine", ["redis_refusing_writes", "sqlite_on_a_full_disk"],
                         ids=["redis-MISCONF", "sqlite-disk-full"])
def test_storage_refusing_writes_is_said_once_each_way(
    engine: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    store, refuse = request.getfixturevalue(engine)
    store.put_if_absent("known", "before")
    caplog.set_level(logging.INFO, logger=HEALTH)

    heal = refuse()
    for _ in range(ROUNDS):
        poll_as_an_idle_process(store)
    during = said(caplog)
    heal()
    store.set("worker-alive", "worker-1", 10)
    store.set("worker-alive", "worker-1", 10)

    assert during == ["storage went away"]
    assert said(caplog) == ["storage went away", "storage is back"]
