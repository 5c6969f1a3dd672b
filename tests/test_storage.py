"""Behaviour of the durable store, every test run against SQLite and a real redis-server."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.jobs.storage import BacklogFull, Store, StoreUnavailable, open_store
from bot.jobs.storage.doorbell import Doorbell
from bot.jobs.storage.redis import RedisStore
from bot.jobs.storage.sqlite import SqliteStore

START = 1_700_000_000.0
RETENTION = 7 * 24 * 3600.0


class FakeClock:
    """A clock tests move by hand, so leases, expiries and windows need no sleeping."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """One engine under test: its URL and a factory of stores sharing the same data."""

    name: str
    url: str
    make: Callable[..., Store]


def _free_port() -> int:
    """Ask the kernel for a port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run a throwaway redis-server for this module and yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    log = (workdir / "redis.log").open("w")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"redis-server did not start: {(workdir / 'redis.log').read_text()}"
                    )
                time.sleep(0.01)  # retry pause between connection attempts, bounded by deadline
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def clock() -> FakeClock:
    """Give each test its own hand-moved time."""
    return FakeClock()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Backend]:
    """Yield a factory of stores on one fresh SQLite file or one fresh Redis key prefix."""
    opened: list[Store] = []
    if request.param == "sqlite":
        path = tmp_path / "nested" / "store.db"
        url = f"sqlite:///{path}"

        def make(**options: Any) -> Store:
            opened.append(SqliteStore(path, **{"clock": clock, **options}))
            return opened[-1]

    else:
        url = f"{request.getfixturevalue('redis_url')}?prefix=test-{uuid.uuid4().hex}:"

        def make(**options: Any) -> Store:
            opened.append(RedisStore.from_url(url, **{"clock": clock, **options}))
            return opened[-1]

    yield Backend(request.param, url, make)
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    """Give a test one store on a fresh backend."""
    return backend.make()


# --- accept and dedupe -------------------------------------------------------------------------


def test_accept_records_a_job_once(store: Store) -> None:
    assert store.accept("e1", "messages", "{}") is True
    assert store.accept("e1", "messages", "{}") is False
    assert store.backlog() == 1


def test_dedupe_holds_across_instances_on_the_same_data(backend: Backend) -> None:
    first, second = backend.make(), backend.make()
    assert first.accept("e1", "messages", '{"n": 1}') is True
    assert second.accept("e1", "messages", '{"n": 2}') is False
    job = second.claim("w", 30)
    assert job is not None and job.payload == '{"n": 1}'


def test_odd_ids_and_a_megabyte_payload_round_trip(store: Store) -> None:
    payload = json.dumps({"data": {"text": "é☃" + "x" * 1_000_000}})
    event_id = "Y2lzY29zcGFyazovL3Vz/L01F: job:seen é ☃"
    assert store.accept(event_id, "attachmentActions", payload)
    job = store.claim("w", 30)
    assert job is not None
    assert (job.event_id, job.kind, job.payload) == (event_id, "attachmentActions", payload)


# --- claim -------------------------------------------------------------------------------------


def test_claim_hands_out_oldest_first_with_its_fields(store: Store, clock: FakeClock) -> None:
    for n in range(3):
        store.accept(f"e{n}", "messages", f'{{"n": {n}}}')
        clock.advance(1)
    claimed = [store.claim("w", 30) for _ in range(3)]
    assert [(j.event_id, j.payload, j.attempts, j.accepted_at) for j in claimed if j] == [
        ("e0", '{"n": 0}', 1, START),
        ("e1", '{"n": 1}', 1, START + 1),
        ("e2", '{"n": 2}', 1, START + 2),
    ]
    assert store.claim("w", 30) is None


def test_claim_on_an_empty_store_is_none(store: Store) -> None:
    assert store.claim("w", 30) is None


def test_claim_rejects_empty_owner_and_non_positive_lease(store: Store) -> None:
    store.accept("e1", "messages", "{}")
    with pytest.raises(ValueError, match="owner"):
        store.claim("", 30)
    with pytest.raises(ValueError, match="lease_seconds"):
        store.claim("w", 0)
    assert store.claim("w", 30) is not None


def test_expired_lease_makes_the_job_claimable_again(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", "{}")
    first = store.claim("w1", 30)
    assert first is not None and first.attempts == 1
    clock.advance(29.9)
    assert store.claim("w2", 30) is None
    clock.advance(0.1)
    again = store.claim("w2", 30)
    assert again is not None
    assert (again.event_id, again.attempts, again.accepted_at) == ("e1", 2, START)


def test_an_expired_job_goes_before_newer_ones(store: Store, clock: FakeClock) -> None:
    store.accept("old", "messages", "{}")
    assert store.claim("w1", 10) is not None
    clock.advance(5)
    store.accept("new", "messages", "{}")
    clock.advance(6)
    assert [j.event_id for j in (store.claim("w2", 10), store.claim("w2", 10)) if j] == [
        "old",
        "new",
    ]


def test_a_sigkilled_worker_loses_its_job_only_until_the_lease_ends(
    backend: Backend, clock: FakeClock
) -> None:
    store = backend.make()
    store.accept("e1", "messages", "{}")
    context = multiprocessing.get_context("fork")
    claimed = context.Queue()
    worker = context.Process(target=_claim_then_hang, args=(store, claimed))
    worker.start()
    try:
        assert claimed.get(timeout=10) == "e1"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(timeout=10)
    assert worker.exitcode == -signal.SIGKILL
    assert store.claim("w2", 60) is None
    clock.advance(60)
    job = store.claim("w2", 60)
    assert job is not None and (job.event_id, job.attempts) == ("e1", 2)


def _claim_then_hang(store: Store, claimed: Any) -> None:
    """Child process: claim with the inherited store, report, then wait to be killed."""
    job = store.claim("doomed", 60)
    claimed.put(job.event_id if job else None)
    threading.Event().wait(60)


def test_threads_never_claim_the_same_job(backend: Backend) -> None:
    stores = [backend.make(), backend.make()]
    ids = {f"e{n}" for n in range(200)}
    for event_id in sorted(ids):
        stores[0].accept(event_id, "messages", "{}")
    start = threading.Barrier(8)
    claimed: list[str] = []

    def work(n: int) -> None:
        start.wait()
        store = stores[n % 2]
        while len(claimed) <= len(ids) and (job := store.claim(f"w{n}", 300)) is not None:
            claimed.append(job.event_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(claimed) == Counter(ids)
    assert stores[1].backlog() == 200


def test_processes_never_claim_the_same_job(backend: Backend) -> None:
    store = backend.make()
    ids = {f"e{n}" for n in range(300)}
    for event_id in sorted(ids):
        store.accept(event_id, "messages", "{}")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = context.Barrier(2)
    workers = [
        context.Process(target=_claim_all, args=(backend.url, f"p{n}", start, results))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    batches = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert all(batches), "each process should have claimed some jobs"
    assert Counter(id_ for batch in batches for id_ in batch) == Counter(ids)
    assert store.backlog() == 0


def _claim_all(url: str, owner: str, start: Any, results: Any) -> None:
    """Child process: open the store from its URL, then claim and complete until none are left."""
    store = open_store(url)
    start.wait()
    claimed = []
    while len(claimed) < 1000 and (job := store.claim(owner, 300)) is not None:
        claimed.append(job.event_id)
        time.sleep(0.001)  # a job takes time, which gives the other process its turns
        store.complete(job.event_id, owner)
    results.put(claimed)
    store.close()


# --- complete, abandon, extend, backlog --------------------------------------------------------


def test_completed_job_is_never_handed_out_again(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", "{}")
    job = store.claim("w1", 30)
    assert job is not None
    store.complete("e1", "w1")
    clock.advance(3600)
    assert store.claim("w2", 30) is None
    assert store.backlog() == 0
    assert store.accept("e1", "messages", "{}") is False


def test_abandoned_job_is_kept_for_inspection_only(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", '{"poison": true}')
    store.accept("e2", "messages", "{}")
    assert store.claim("w1", 30) is not None
    clock.advance(2)
    store.abandon("e1", "w1", "KeyError: 'roomId'")
    clock.advance(3600)
    remaining = store.claim("w2", 30)
    assert remaining is not None and remaining.event_id == "e2"
    assert store.claim("w2", 30) is None
    assert store.backlog() == 1
    assert store.accept("e1", "messages", "{}") is False
    [parked] = store.abandoned()
    assert parked.job.event_id == "e1"
    assert parked.job.payload == '{"poison": true}'
    assert parked.job.attempts == 1
    assert parked.error == "KeyError: 'roomId'"
    assert parked.abandoned_at == START + 2


def test_abandoned_lists_newest_first_up_to_the_limit(store: Store, clock: FakeClock) -> None:
    for n in range(3):
        store.accept(f"e{n}", "messages", "{}")
        clock.advance(1)
        assert store.claim("w", 30) is not None
        store.abandon(f"e{n}", "w", f"boom {n}")
    assert [a.job.event_id for a in store.abandoned(limit=2)] == ["e2", "e1"]


def test_only_the_last_claimer_can_finish_or_extend(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", "{}")
    assert store.claim("w1", 10) is not None
    clock.advance(11)
    assert store.claim("w2", 10) is not None
    store.complete("e1", "w1")
    store.abandon("e1", "w1", "late")
    assert store.backlog() == 1
    assert store.abandoned() == []
    assert store.extend("e1", "w1", 10) is False
    assert store.extend("e1", "w2", 10) is True
    store.complete("e1", "w2")
    assert store.backlog() == 0


def test_unclaimed_job_cannot_be_completed(store: Store) -> None:
    store.accept("e1", "messages", "{}")
    store.complete("e1", "w1")
    store.complete("missing", "w1")
    assert store.backlog() == 1
    assert store.claim("w1", 30) is not None


def test_extend_keeps_the_job_from_other_workers(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", "{}")
    assert store.claim("w1", 10) is not None
    clock.advance(8)
    assert store.extend("e1", "w1", 10) is True
    clock.advance(9)  # past the first lease, inside the renewed one
    assert store.claim("w2", 10) is None
    clock.advance(1)
    job = store.claim("w2", 10)
    assert job is not None and job.attempts == 2


def test_a_run_out_lease_nobody_took_can_still_be_renewed(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", "{}")
    assert store.claim("w1", 10) is not None
    clock.advance(15)
    assert store.extend("e1", "w1", 10) is True
    assert store.claim("w2", 10) is None


def test_extend_of_a_finished_job_reports_the_lease_lost(store: Store) -> None:
    store.accept("e1", "messages", "{}")
    assert store.claim("w1", 10) is not None
    store.complete("e1", "w1")
    assert store.extend("e1", "w1", 10) is False
    assert store.extend("never-seen", "w1", 10) is False


def test_backlog_counts_pending_and_leased_jobs(store: Store) -> None:
    assert store.backlog() == 0
    for n in range(3):
        store.accept(f"e{n}", "messages", "{}")
    assert store.claim("w", 30) is not None
    assert store.backlog() == 3
    store.complete("e0", "w")
    assert store.backlog() == 2


# --- dead workers: heartbeats and release -------------------------------------------------------


def test_a_released_owners_jobs_are_claimable_at_once(store: Store) -> None:
    for number in range(3):
        store.accept(f"e{number}", "messages", "{}")
    assert store.claim("dead", 60).event_id == "e0"  # type: ignore[union-attr]
    assert store.claim("live", 60).event_id == "e1"  # type: ignore[union-attr]
    assert store.release("dead") == 1  # no clock moved: the lease has 60 s to run
    again = store.claim("next", 60)
    assert again is not None and (again.event_id, again.attempts) == ("e0", 2)
    assert store.claim("next", 60).event_id == "e2"  # type: ignore[union-attr]
    assert store.claim("next", 60) is None, "the live owner's job was handed out again"
    assert store.extend("e1", "live", 60) is True
    store.complete("e1", "live")
    assert store.backlog() == 2


def test_what_a_released_owner_sends_late_loses(store: Store) -> None:
    store.accept("e1", "messages", "{}")
    store.accept("e2", "messages", "{}")
    assert store.claim("dead", 60) is not None
    store.heartbeat("dead", 60)
    store.release("dead")
    assert store.extend("e1", "dead", 60) is False
    store.complete("e1", "dead")
    store.abandon("e1", "dead", "late")
    store.heartbeat("dead", 60)
    assert store.claim("dead", 60) is None  # e2 is ready, but not for a dead owner
    assert (store.backlog(), store.abandoned(), store.live_workers()) == (2, [], 0)
    assert store.claim("next", 60).event_id == "e1"  # type: ignore[union-attr]


def test_heartbeats_count_the_live_workers(store: Store, clock: FakeClock) -> None:
    assert store.live_workers() == 0
    store.heartbeat("w1", 10)
    store.heartbeat("w2", 20)
    assert store.live_workers() == 2
    clock.advance(15)
    assert store.live_workers() == 1
    store.heartbeat("w1", 10)
    assert store.live_workers() == 2
    assert store.release("w2") == 0
    assert store.release("never-seen") == 0
    assert store.live_workers() == 1


def test_a_job_put_back_for_later_stays_put_when_its_owner_is_released(
    store: Store, clock: FakeClock
) -> None:
    store.accept("e1", "messages", "{}")
    assert store.claim("w1", 60) is not None
    store.retry_later("e1", "w1", 30)
    assert store.extend("e1", "w1", 60) is False  # no longer w1's
    assert store.release("w1") == 0
    assert store.claim("w2", 60) is None, "the backoff was cut short"
    clock.advance(30)
    job = store.claim("w2", 60)
    assert job is not None and job.attempts == 2


def test_a_release_wakes_a_waiting_worker(store: Store) -> None:
    store.accept("e1", "messages", "{}")
    store.wait_for_work(0.01)  # a SQLite waiter opens its pipe on its first wait
    while store.wait_for_work(0.01):
        pass  # the accept's wake-up
    assert store.claim("dead", 60) is not None
    store.release("dead")
    assert store.wait_for_work(1) is True


def test_releasing_dead_owners_never_hands_a_live_owners_job_out_twice(backend: Backend) -> None:
    """Owners claim from two connections while dead ones are released between their claims:
    each job goes to exactly one live owner, whatever the interleaving."""
    seed = backend.make(clock=time.time)
    jobs = 60
    for number in range(jobs):
        seed.accept(f"e{number}", "messages", "{}")
    claimed: Counter[str] = Counter()
    lock = threading.Lock()

    def live(name: str) -> None:
        store = backend.make(clock=time.time)
        deadline = time.monotonic() + 30
        while sum(claimed.values()) < jobs and time.monotonic() < deadline:
            job = store.claim(name, 600)
            if job is not None:
                with lock:
                    claimed[job.event_id] += 1

    def dying(round_: int) -> None:
        store = backend.make(clock=time.time)
        for number in range(jobs):
            owner = f"dead-{round_}-{number}"
            if store.claim(owner, 600) is None:
                return
            store.release(owner)

    threads = [threading.Thread(target=live, args=(f"live-{n}",)) for n in range(3)]
    threads += [threading.Thread(target=dying, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed.values()) == [1] * jobs
    assert seed.backlog() == jobs


# --- retention ---------------------------------------------------------------------------------


def test_dedupe_forgets_finished_events_after_the_retention(store: Store, clock: FakeClock) -> None:
    store.accept("done", "messages", "{}")
    store.accept("poison", "messages", "{}")
    assert store.claim("w", 30) is not None and store.claim("w", 30) is not None
    store.complete("done", "w")
    store.abandon("poison", "w", "boom")
    clock.advance(RETENTION - 1)
    assert store.accept("done", "messages", "{}") is False
    assert [a.job.event_id for a in store.abandoned()] == ["poison"]
    clock.advance(1)
    assert store.abandoned() == []
    assert store.accept("done", "messages", '"again"') is True
    assert store.accept("poison", "messages", '"again"') is True
    jobs = [store.claim("w", 30), store.claim("w", 30)]
    assert [(j.event_id, j.payload, j.attempts) for j in jobs if j] == [
        ("done", '"again"', 1),
        ("poison", '"again"', 1),
    ]


def test_a_live_job_is_never_forgotten(store: Store, clock: FakeClock) -> None:
    store.accept("e1", "messages", "{}")
    clock.advance(RETENTION * 2)
    assert store.accept("e1", "messages", "{}") is False
    assert store.backlog() == 1


def test_retention_is_configurable(backend: Backend, clock: FakeClock) -> None:
    store = backend.make(retention_seconds=60)
    store.accept("e1", "messages", "{}")
    assert store.claim("w", 30) is not None
    store.complete("e1", "w")
    clock.advance(60)
    assert store.accept("e1", "messages", "{}") is True


def test_sqlite_prunes_old_rows_occasionally(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path, clock=clock, retention_seconds=100, prune_interval_seconds=50)
    store.accept("old", "messages", "{}")
    assert store.claim("w", 10) is not None
    store.complete("old", "w")
    store.set("fact", "v", ttl_seconds=5)
    store.hit("person", 5)
    store.put_record("meetings", "gone", "v", at=START, tags=["a", "b"], expires_at=START + 5)
    store.put_record("meetings", "kept", "v", at=START, tags=["a"], expires_at=START + 500)
    clock.advance(100)
    store.accept("live", "messages", "{}")
    assert store.claim("w", 10) is not None  # claiming is what prunes

    def rows(table: str) -> int:
        with sqlite3.connect(path) as raw:
            return raw.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    assert (rows("jobs"), rows("facts"), rows("hits")) == (1, 0, 0)
    assert (rows("records"), rows("record_tags")) == (1, 1)
    store.accept("recent", "messages", "{}")
    assert store.claim("w", 10) is not None
    store.complete("recent", "w")
    store.set("fact2", "v", ttl_seconds=5)
    clock.advance(10)
    store.claim("w", 10)  # within the prune interval: nothing is deleted yet
    assert (rows("jobs"), rows("facts")) == (2, 1)
    store.close()


def test_sqlite_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")

    def open_files() -> int:
        fds = Path("/proc/self/fd").iterdir()
        return sum(1 for fd in fds if os.path.realpath(fd) == str(tmp_path / "store.db"))

    for n in range(20):  # like a server that runs each request on a new thread
        thread = threading.Thread(target=store.accept, args=(f"e{n}", "messages", "{}"))
        thread.start()
        thread.join()
    gc.collect()
    assert open_files() <= 1
    assert store.backlog() == 20
    store.close()
    assert open_files() == 0


def test_redis_gives_every_per_event_key_its_own_expiry(redis_url: str, clock: FakeClock) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisStore.from_url(f"{redis_url}?prefix={prefix}", clock=clock)
    for event_id in ("done", "poison"):
        store.accept(event_id, "messages", "{}")
        assert store.claim("w", 30) is not None
    store.complete("done", "w")
    store.abandon("poison", "w", "boom")
    store.set("ttl-fact", "v", ttl_seconds=30)
    store.set("forever", "v")
    store.hit("person", 60)
    store.close()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ttls = {key.removeprefix(prefix): client.pttl(key) for key in client.scan_iter(f"{prefix}*")}
    client.close()
    forever = {key for key, ttl in ttls.items() if ttl < 0}
    assert forever - {"ready", "leased", "abandoned", "seq", "wake"} == {"fact:forever"}
    assert "job:done" not in ttls
    assert ttls["seen:done"] > RETENTION * 1000 - 10_000
    assert ttls["job:poison"] > RETENTION * 1000 - 10_000
    assert 30_000 < ttls["fact:ttl-fact"] <= 90_000
    assert 60_000 < ttls["hits:person"] <= 120_000


# --- facts -------------------------------------------------------------------------------------


def test_put_if_absent_keeps_the_first_value(store: Store) -> None:
    assert store.put_if_absent("form:M", "action-A") is None
    assert store.put_if_absent("form:M", "action-B") == "action-A"
    assert store.get("form:M") == "action-A"
    assert store.get("form:other") is None


def test_put_if_absent_has_exactly_one_winner_among_threads(backend: Backend) -> None:
    stores = [backend.make(), backend.make()]
    keys = [f"form:M{k}" for k in range(40)]
    start = threading.Barrier(8)
    answers: dict[str, dict[str, str | None]] = {key: {} for key in keys}

    def race(n: int) -> None:
        start.wait()
        for key in keys:
            answers[key][f"v{n}"] = stores[n % 2].put_if_absent(key, f"v{n}")

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for key, by_value in answers.items():
        winners = [value for value, existing in by_value.items() if existing is None]
        assert len(winners) == 1, f"{key} had winners {winners}"
        assert set(by_value.values()) == {None, winners[0]}
        assert stores[0].get(key) == winners[0]


def test_facts_expire_by_the_store_clock(store: Store, clock: FakeClock) -> None:
    store.set("k", "v", ttl_seconds=10)
    assert store.put_if_absent("k", "other", ttl_seconds=100) == "v"
    clock.advance(9.9)
    assert store.get("k") == "v"
    clock.advance(0.1)
    assert store.get("k") is None
    assert store.put_if_absent("k", "new", ttl_seconds=5) is None
    assert store.get("k") == "new"
    clock.advance(5)
    assert store.get("k") is None


def test_set_overwrites_value_and_expiry_and_delete_forgets(store: Store, clock: FakeClock) -> None:
    store.set("k", "v1", ttl_seconds=10)
    store.set("k", "v2")
    clock.advance(RETENTION)
    assert store.get("k") == "v2"
    store.delete("k")
    store.delete("never-set")
    assert store.get("k") is None
    assert store.put_if_absent("k", "v3") is None


def test_ttl_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        store.set("k", "v", ttl_seconds=0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        store.put_if_absent("k", "v", ttl_seconds=-1)
    assert store.get("k") is None


# --- records -----------------------------------------------------------------------------------


def test_a_record_is_written_read_replaced_and_kept_per_collection(store: Store) -> None:
    store.put_record("meetings", "m-1", "first", at=START)
    assert store.record("meetings", "m-1") == "first"
    store.put_record("meetings", "m-1", "second", at=START + 1)
    assert store.record("meetings", "m-1") == "second"
    assert store.record("audit", "m-1") is None
    assert store.record("meetings", "m-2") is None
    store.put_record("audit", "m-1", "another kind", at=START)
    assert (store.record("meetings", "m-1"), store.record("audit", "m-1")) == (
        "second", "another kind")
    assert store.get("m-1") is None  # records are not facts


def test_records_list_under_each_tag_newest_first(store: Store) -> None:
    store.put_record("meetings", "old", "v-old", at=START, tags=["person:A", "space:S"])
    store.put_record("meetings", "new", "v-new", at=START + 20, tags=["person:A"])
    store.put_record("meetings", "mid", "v-mid", at=START + 10, tags=["space:S", "person:A"])
    store.put_record("meetings", "mid-b", "v-mid-b", at=START + 10, tags=["person:A"])
    store.put_record("meetings", "untagged", "v", at=START + 30)
    store.put_record("other", "elsewhere", "v", at=START + 40, tags=["person:A"])

    assert store.records("meetings", "person:A") == [
        ("new", "v-new"), ("mid-b", "v-mid-b"), ("mid", "v-mid"), ("old", "v-old")]
    assert store.records("meetings", "space:S") == [("mid", "v-mid"), ("old", "v-old")]
    assert store.records("meetings", "person:B") == []
    assert store.records("other", "person:A") == [("elsewhere", "v")]


def test_records_are_windowed_by_since_and_until_and_cut_by_limit(store: Store) -> None:
    for minute in range(6):
        store.put_record("audit", f"row-{minute}", str(minute), at=START + 60 * minute,
                         tags=["all"])

    def ids(**window: Any) -> list[str]:
        return [record_id for record_id, _ in store.records("audit", "all", **window)]

    assert ids() == [f"row-{minute}" for minute in (5, 4, 3, 2, 1, 0)]
    assert ids(since=START + 120) == ["row-5", "row-4", "row-3", "row-2"]  # since: included
    assert ids(until=START + 120) == ["row-1", "row-0"]  # until: excluded
    assert ids(since=START + 60, until=START + 240) == ["row-3", "row-2", "row-1"]
    assert ids(since=START + 60.5, until=START + 120.5) == ["row-2"]
    assert ids(limit=2) == ["row-5", "row-4"]
    assert ids(since=START, until=START + 300, limit=3) == ["row-4", "row-3", "row-2"]
    assert ids(since=START + 300, until=START + 300) == []


def test_replacing_a_record_moves_it_to_its_new_tags_and_time(store: Store) -> None:
    store.put_record("meetings", "m", "v1", at=START + 10, tags=["a", "b", "a"])
    store.put_record("meetings", "n", "other", at=START + 5, tags=["b", "c"])
    assert store.records("meetings", "a") == [("m", "v1")]  # once, though tagged twice
    store.put_record("meetings", "m", "v2", at=START, tags=["b", "c"])

    assert store.records("meetings", "a") == []
    assert store.records("meetings", "b") == [("n", "other"), ("m", "v2")]
    assert store.records("meetings", "c") == [("n", "other"), ("m", "v2")]
    store.put_record("meetings", "m", "v3", at=START + 1)
    assert store.records("meetings", "b") == [("n", "other")]
    assert store.record("meetings", "m") == "v3"


def test_records_expire_by_the_store_clock(store: Store, clock: FakeClock) -> None:
    store.put_record("meetings", "short", "s", at=START + 2, tags=["t"], expires_at=START + 10)
    store.put_record("meetings", "long", "l", at=START + 1, tags=["t"], expires_at=START + 100)
    store.put_record("meetings", "kept", "k", at=START, tags=["t"])
    clock.advance(9.9)
    assert store.records("meetings", "t", limit=2) == [("short", "s"), ("long", "l")]
    clock.advance(0.1)
    assert store.record("meetings", "short") is None
    assert store.records("meetings", "t", limit=2) == [("long", "l"), ("kept", "k")]
    store.put_record("meetings", "long", "l2", at=START + 1, tags=["t"])  # now kept for good
    clock.advance(RETENTION)
    assert store.records("meetings", "t") == [("long", "l2"), ("kept", "k")]
    assert store.record("meetings", "long") == "l2"

    store.put_record("meetings", "past", "p", at=clock.now, tags=["t"], expires_at=clock.now)
    assert store.record("meetings", "past") is None
    store.put_record("meetings", "short", "back", at=clock.now, tags=["u"],
                     expires_at=clock.now + 5)
    assert store.records("meetings", "t") == [("long", "l2"), ("kept", "k")]
    assert store.records("meetings", "u") == [("short", "back")]


def test_a_deleted_record_is_gone_from_its_tags(store: Store) -> None:
    store.put_record("meetings", "m", "v", at=START, tags=["a", "b"])
    store.put_record("meetings", "n", "w", at=START, tags=["a"])
    store.delete_record("meetings", "m")
    store.delete_record("meetings", "never-written")
    assert store.record("meetings", "m") is None
    assert store.records("meetings", "a") == [("n", "w")]
    assert store.records("meetings", "b") == []
    store.put_record("meetings", "m", "again", at=START, tags=["c"])
    assert store.records("meetings", "b") == []
    assert store.records("meetings", "c") == [("m", "again")]


def test_record_ids_tags_and_values_round_trip_unicode_and_a_megabyte(store: Store) -> None:
    value = json.dumps({"sealed": "é☃ \u0000 🙂" + "x" * 1_000_000}, ensure_ascii=False)
    record_id = "Y2lzY29zcGFyazovL3Vz/L01F: record:tagged é ☃"
    tag = "person:zoë@example.com: t:space"
    store.put_record("meetings", record_id, value, at=START, tags=[tag, ""])
    assert store.record("meetings", record_id) == value
    assert store.records("meetings", tag) == [(record_id, value)]
    assert store.records("meetings", "") == [(record_id, value)]
    assert store.records("meetings", "person:zoë@example.com") == []


def test_record_arguments_that_cannot_be_kept_apart_are_refused(store: Store) -> None:
    for collection in ("", "meetings:2025"):
        with pytest.raises(ValueError, match="collection"):
            store.put_record(collection, "m", "v", at=START)
        with pytest.raises(ValueError, match="collection"):
            store.records(collection, "t")
    with pytest.raises(ValueError, match="limit"):
        store.records("meetings", "t", limit=0)
    with pytest.raises(TypeError, match="tags"):
        store.put_record("meetings", "m", "v", at=START, tags="person:A")
    assert store.record("meetings", "m") is None


def test_concurrent_replacements_leave_a_record_under_its_last_tags_only(
    backend: Backend,
) -> None:
    """Each write of a record and its tags is one atomic step, whichever process wins."""
    stores = [backend.make(), backend.make()]
    start = threading.Barrier(6)

    def replace(n: int) -> None:
        start.wait()
        for round_ in range(15):
            stores[n % 2].put_record("meetings", "m", f"{n}-{round_}", at=START + round_,
                                     tags=[f"writer:{n}", f"round:{round_}", "all"])

    threads = [threading.Thread(target=replace, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = stores[0].record("meetings", "m")
    assert final is not None
    writer, round_ = final.split("-")
    for tag in [f"writer:{n}" for n in range(6)] + [f"round:{r}" for r in range(15)] + ["all"]:
        expected = [("m", final)] if tag in (f"writer:{writer}", f"round:{round_}", "all") else []
        assert stores[1].records("meetings", tag) == expected, tag


def test_redis_reclaims_the_space_of_expired_records(redis_url: str, clock: FakeClock) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisStore.from_url(f"{redis_url}?prefix={prefix}", clock=clock)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store.put_record("meetings", "gone", "v", at=START, tags=["t"], expires_at=START + 30)
    store.put_record("meetings", "later", "v", at=START, tags=["t"], expires_at=START + 300)
    store.put_record("meetings", "own", "v", at=START, tags=["alone"], expires_at=START + 30)
    ttls = {key.removeprefix(prefix): client.pttl(key) for key in client.scan_iter(f"{prefix}*")}
    assert 30_000 < ttls["record:meetings:gone"] <= 90_000
    assert 300_000 < ttls["record:meetings:later"] <= 360_000
    for key in ("tagged:meetings:t", "tagged-expiry:meetings:t"):  # the longest-lived one's
        assert ttls[key] == pytest.approx(ttls["record:meetings:later"], abs=1000)
    assert 30_000 < ttls["tagged:meetings:alone"] <= 90_000

    clock.advance(30)
    store.put_record("meetings", "new", "v", at=clock.now, tags=["t"])  # drops the expired one
    assert client.zrange(f"{prefix}tagged:meetings:t", 0, -1) == ["later", "new"]
    assert client.zrange(f"{prefix}tagged-expiry:meetings:t", 0, -1) == ["later"]
    assert client.pttl(f"{prefix}tagged:meetings:t") == -1  # a record kept for good: the set too
    assert client.pttl(f"{prefix}tagged-expiry:meetings:t") == -1

    # Redis dropped a record's hash on its own; its id comes back with other tags.
    store.put_record("meetings", "reused", "old", at=START, tags=["t"], expires_at=START + 60)
    client.delete(f"{prefix}record:meetings:reused")
    store.put_record("meetings", "reused", "fresh", at=clock.now, tags=["u"])
    assert store.records("meetings", "t") == [("new", "v"), ("later", "v")]
    assert store.records("meetings", "u") == [("reused", "fresh")]
    store.delete_record("meetings", "new")
    store.delete_record("meetings", "later")
    assert client.zrange(f"{prefix}tagged:meetings:t", 0, -1) == ["reused"]  # until it expires
    clock.advance(60)
    store.put_record("meetings", "next", "v", at=clock.now, tags=["t"])
    assert client.zrange(f"{prefix}tagged:meetings:t", 0, -1) == ["next"]
    client.close()
    store.close()


# --- rate-limit hits ---------------------------------------------------------------------------


def test_hit_counts_a_sliding_window(store: Store, clock: FakeClock) -> None:
    counts = []
    for step in (0, 10, 10, 40, 10.5, 129.5):  # at 0, 10, 20, 60, 70.5, 200
        clock.advance(step)
        counts.append(store.hit("person:A", 60))
    assert counts == [1, 2, 3, 3, 3, 1]
    assert store.hit("person:B", 60) == 1


def test_hit_counts_every_concurrent_event(backend: Backend) -> None:
    stores = [backend.make(), backend.make()]
    start = threading.Barrier(8)
    counts: list[int] = []

    def burst(n: int) -> None:
        start.wait()
        counts.extend(stores[n % 2].hit("person:A", 60) for _ in range(25))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(1, 201))


# --- waking workers in other processes ---------------------------------------------------------


def _accept_elsewhere(url: str, event_id: str) -> None:
    """Accept one event from another process, as a web process does."""
    code = f"from bot.jobs.storage import open_store; " \
           f"open_store({url!r}).accept({event_id!r}, 'messages', '{{}}')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_an_accept_in_another_process_wakes_a_waiter(backend: Backend) -> None:
    store = backend.make()
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(store.wait_for_work(30)))
    waiter.start()
    time.sleep(0.3)  # the waiter blocks by now; an accept before it would be kept anyway
    _accept_elsewhere(backend.url, "e1")
    waiter.join(timeout=30)
    assert woken == [True]


def test_waiting_with_nothing_accepted_times_out(store: Store) -> None:
    assert store.wait_for_work(0.1) is False


def test_a_duplicate_accept_wakes_nobody(store: Store) -> None:
    store.wait_for_work(0.01)  # a SQLite waiter opens its pipe on its first wait
    assert store.accept("e1", "messages", "{}") is True
    assert store.accept("e1", "messages", "{}") is False
    assert store.wait_for_work(1) is True
    assert store.wait_for_work(0.1) is False


def test_wake_ups_nobody_takes_are_bounded(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    store = RedisStore.from_url(f"{redis_url}?prefix={prefix}")
    for number in range(150):
        store.accept(f"e{number}", "messages", "{}")
    client = redis.Redis.from_url(redis_url)
    assert client.llen(prefix + "wake") == 100
    client.close()
    store.close()


def test_a_full_pipe_never_blocks_an_accept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    store.wait_for_work(0.01)  # a reader holds the pipe open, and reads nothing more
    bell = Doorbell(tmp_path / "x.db-wake")
    for _ in range(70_000):  # more bytes than a pipe holds (64 KiB)
        bell.ring()
    assert store.accept("e1", "messages", "{}") is True
    store.close()


def test_a_file_in_the_doorbells_place_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.db-wake").write_text("not a pipe")
    with pytest.raises(StoreUnavailable, match=r"x\.db-wake beside the SQLite file is not a named"):
        SqliteStore(tmp_path / "x.db")


# --- health and opening ------------------------------------------------------------------------


def test_ping_succeeds_on_a_working_store(store: Store) -> None:
    store.ping()
    store.accept("e1", "messages", "{}")
    store.close()


def test_unreachable_redis_raises_store_unavailable() -> None:
    store = open_store(f"redis://127.0.0.1:{_free_port()}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.accept("e1", "messages", "{}")
    assert time.monotonic() - started < 5
    store.close()


def test_unopenable_sqlite_file_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SqliteStore(tmp_path)  # a directory, not a database file


def test_open_store_reads_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///data/bot.db")
    absolute = open_store(f"sqlite:///{tmp_path}/abs/bot.db")
    assert isinstance(relative, SqliteStore) and isinstance(absolute, SqliteStore)
    assert relative.path == tmp_path / "data" / "bot.db"
    assert absolute.path == tmp_path / "abs" / "bot.db"
    assert (tmp_path / "data" / "bot.db").is_file()
    assert absolute.accept("e1", "messages", "{}")
    relative.close()
    absolute.close()


def test_open_store_reads_redis_urls_with_a_prefix(redis_url: str) -> None:
    default = open_store(redis_url)
    custom = open_store(f"{redis_url}?prefix=other:")
    assert isinstance(default, RedisStore) and isinstance(custom, RedisStore)
    assert default.accept("e1", "messages", "{}") is True
    assert custom.accept("e1", "messages", "{}") is True
    client = redis.Redis.from_url(redis_url)
    assert client.exists("icbot:seen:e1", "other:seen:e1") == 2
    client.delete(*client.keys("icbot:*"), *client.keys("other:*"))
    client.close()
    default.close()
    custom.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/bot", "unsupported store URL scheme 'postgres'"),
        ("", "unsupported store URL scheme: use"),
        ("sqlite://bot.db", "bad sqlite store URL"),
        ("sqlite:///", "bad sqlite store URL"),
        ("sqlite:///:memory:", "bad sqlite store URL"),
    ],
)
def test_open_store_rejects_unknown_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_accept_is_bounded_by_max_backlog_exactly(store: Store) -> None:
    """A full backlog refuses new jobs in the same atomic step; duplicates stay duplicates."""
    assert store.accept("a", "messages", "{}", max_backlog=2)
    assert store.accept("b", "messages", "{}", max_backlog=2)
    with pytest.raises(BacklogFull):
        store.accept("c", "messages", "{}", max_backlog=2)
    assert store.accept("a", "messages", "{}", max_backlog=2) is False
    assert store.backlog() == 2
    job = store.claim("w", 30)
    assert job is not None
    with pytest.raises(BacklogFull):  # a leased job is still waiting to be finished
        store.accept("c", "messages", "{}", max_backlog=2)
    store.complete(job.event_id, "w")
    assert store.accept("c", "messages", "{}", max_backlog=2)


def test_concurrent_accepts_never_exceed_max_backlog(store: Store) -> None:
    """Many threads accepting at once: exactly max_backlog jobs get in."""
    results: list[str] = []

    def deliver(number: int) -> None:
        try:
            results.append("in" if store.accept(f"e{number}", "messages", "{}", 10) else "dup")
        except BacklogFull:
            results.append("full")

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("in") == 10 and results.count("full") == 30
    assert store.backlog() == 10


def test_oldest_waiting_is_the_first_accepted_of_the_jobs_not_yet_done(
        store: Store, clock: FakeClock) -> None:
    assert store.oldest_waiting() is None
    for number in range(3):
        store.accept(f"e{number}", "messages", "{}")
        clock.advance(10)
    assert store.claim("w", 30) is not None  # e0, in flight: still waiting to be done
    assert store.oldest_waiting() == START
    store.retry_later("e0", "w", 60)  # backing off: still waiting
    assert store.oldest_waiting() == START
    assert store.claim("w", 30) is not None  # e1
    store.complete("e1", "w")
    assert store.oldest_waiting() == START
    clock.advance(60)
    assert store.claim("w", 30) is not None  # e0, its backoff over
    store.abandon("e0", "w", "too many attempts")
    assert store.oldest_waiting() == START + 20  # e2
