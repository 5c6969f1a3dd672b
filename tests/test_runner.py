"""The job runner on its own: wake-ups, the lookout, leases, attempts, errors, idleness.

Each test runs a real `JobRunner` over a real SQLite file. Where a test must see what the runner
asks of the store (how often it claims, which backoff it sets) the store is a `SpyStore`, the
SQLite engine with counters; where it must decide when a lease runs out, the store reads a
`HandClock`. Nothing asserts a tight timing: the tests wait for outcomes with generous timeouts
and compare counts with wide margins, so a busy machine makes them slower, never red.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.jobs.runner import Attempt, JobRunner
from bot.jobs.storage import Clock, Job, StoreUnavailable, open_store
from bot.jobs.storage.sqlite import SqliteStore
from tests.support.faults import poll_until

ATTEMPTS = 5  # for tests not about attempts
LONG_LEASE = 30.0  # for tests not about leases: no lease runs out during them by accident
QUICK_BACKOFF = 0.01  # what the SpyStore turns the runner's retry backoff into


class HandClock:
    """A wall clock that moves only when the test moves it, so a lease runs out on cue."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


class SpyStore(SqliteStore):
    """The SQLite engine, counting claims and able to fail them, and shortening retry backoffs:
    the delay a failed job is put back with is kept in ``backoffs`` and the job is made visible
    again after ``QUICK_BACKOFF`` instead, so retries come in milliseconds while the runner's
    code stays as it is.
    """

    def __init__(self, path: Path, *, clock: Clock = time.time) -> None:
        super().__init__(path, clock=clock)
        self._spy_lock = threading.Lock()
        self.claims = 0  # claims answered (counted after the engine answered)
        self.claim_failures: list[Exception] = []  # raised, in order, by the next claims
        self.backoffs: list[float] = []

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        with self._spy_lock:
            failure = self.claim_failures.pop(0) if self.claim_failures else None
        if failure is not None:
            with self._spy_lock:
                self.claims += 1
            raise failure
        job = super().claim(owner, lease_seconds)
        with self._spy_lock:
            self.claims += 1
        return job

    def retry_later(self, event_id: str, owner: str, delay_seconds: float) -> None:
        with self._spy_lock:
            self.backoffs.append(delay_seconds)
        super().retry_later(event_id, owner, QUICK_BACKOFF)


class DeafStore(SpyStore):
    """A SpyStore whose wake-up never rings: only polls and `notify` wake the runner."""

    def wait_for_work(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False


def test_notify_wakes_an_idle_thread_at_once_not_at_the_next_poll(tmp_path: Path) -> None:
    store = DeafStore(tmp_path / "x.sqlite3")
    done = threading.Event()
    runner = JobRunner(store, lambda attempt: done.set(), threads=2, lease_seconds=LONG_LEASE,
                       poll_seconds=30.0, max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.claims >= 2, timeout=5)  # both threads looked, found nothing
        store.accept("e-1", "messages", "{}")
        time.sleep(0.3)
        # Left alone, nobody looks again before the 30 s poll: the job waits.
        assert (done.is_set(), store.claims) == (False, 2)
        runner.notify()
        assert done.wait(timeout=3), "notify did not wake a thread"
        assert runner.wait_until_idle(timeout=5)
    finally:
        runner.stop()


def test_an_accept_in_another_process_wakes_an_idle_worker_not_the_next_poll(
    tmp_path: Path,
) -> None:
    """What a web process stores, a worker process sitting idle takes at once."""
    path = tmp_path / "x.sqlite3"
    store = SpyStore(path)
    done = threading.Event()
    runner = JobRunner(store, lambda attempt: done.set(), threads=2, lease_seconds=LONG_LEASE,
                       poll_seconds=30.0, max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.claims >= 2, timeout=5)
        time.sleep(0.2)  # the lookout is waiting on the doorbell by now
        accept = f"from bot.jobs.storage import open_store; " \
                 f"open_store('sqlite:///{path}').accept('e-1', 'messages', '{{}}')"
        subprocess.run([sys.executable, "-c", accept], check=True, timeout=60)
        assert done.wait(timeout=10), "the runner did not wake for another process's accept"
    finally:
        runner.stop()


def test_a_thread_that_finds_a_job_wakes_the_next_so_a_flood_gets_every_thread(
    tmp_path: Path,
) -> None:
    store = SpyStore(tmp_path / "x.sqlite3")
    gate = threading.Event()
    working: list[str] = []
    lock = threading.Lock()

    def process(attempt: Attempt) -> None:
        with lock:
            working.append(attempt.job.event_id)
        gate.wait(timeout=10)

    runner = JobRunner(store, process, threads=4, lease_seconds=LONG_LEASE, poll_seconds=30.0,
                       max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.claims >= 4, timeout=5)  # all four idle
        for number in range(4):
            store.accept(f"flood-{number}", "messages", "{}")
        runner.notify()  # one wake-up, as the intake gives after storing one event
        poll_until(lambda: len(working) == 4, timeout=5)  # four jobs worked on at once
        gate.set()
        assert runner.wait_until_idle(timeout=10)
    finally:
        gate.set()
        runner.stop()
    assert sorted(working) == [f"flood-{number}" for number in range(4)]


def test_only_one_idle_thread_polls(tmp_path: Path) -> None:
    poll = 0.05
    store = SpyStore(tmp_path / "x.sqlite3")
    runner = JobRunner(store, lambda attempt: None, threads=8, lease_seconds=LONG_LEASE,
                       poll_seconds=poll, max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.claims >= 8, timeout=5)  # every thread's first look
        before, started = store.claims, time.monotonic()
        time.sleep(1.0)
        polls, elapsed = store.claims - before, time.monotonic() - started
    finally:
        runner.stop()
    one_poller = elapsed / poll  # about 20; eight pollers would make about 160
    assert polls >= 3, f"the idle pool stopped polling ({polls} claims in {elapsed:.2f} s)"
    assert polls < 3 * one_poller, (
        f"{polls} claims in {elapsed:.2f} s: more than one idle thread polls "
        f"(one poller makes about {one_poller:.0f})")


def test_a_job_outliving_its_lease_is_not_handed_to_another_worker(tmp_path: Path) -> None:
    """The heartbeat renews the lease of a job still being worked on: a second runner (another
    owner, as in another process) polling the same file all along never gets it."""
    lease, work = 0.75, 2.0  # the job runs for more than two and a half leases
    url = f"sqlite:///{tmp_path}/x.sqlite3"
    store = open_store(url)
    store.accept("slow", "messages", "{}")
    other_store = SpyStore(tmp_path / "x.sqlite3")
    calls: list[tuple[str, int]] = []
    lock = threading.Lock()
    started = threading.Event()

    def first_process(attempt: Attempt) -> None:
        with lock:
            calls.append(("first", attempt.job.attempts))
        started.set()
        time.sleep(work)

    def second_process(attempt: Attempt) -> None:
        with lock:
            calls.append(("second", attempt.job.attempts))

    first = JobRunner(store, first_process, threads=1, lease_seconds=lease, poll_seconds=0.05,
                      max_attempts=ATTEMPTS)
    second = JobRunner(other_store, second_process, threads=2, lease_seconds=lease,
                       poll_seconds=0.02, max_attempts=ATTEMPTS)
    first.start()
    try:
        assert started.wait(timeout=5)
        second.start()
        assert first.wait_until_idle(timeout=10)
        looked = other_store.claims
    finally:
        first.stop()
        second.stop()
    assert calls == [("first", 1)]
    assert looked >= 10, f"the second runner hardly looked ({looked} claims): this proves nothing"


def test_the_job_of_a_worker_that_died_is_claimed_again_once_its_lease_runs_out(
    tmp_path: Path,
) -> None:
    clock = HandClock()
    store = SpyStore(tmp_path / "x.sqlite3", clock=clock)
    store.accept("orphan", "messages", "{}")
    assert store.claim("host:1234:dead", 5.0) is not None  # claimed, then the process died
    seen: queue.Queue[Job] = queue.Queue()
    runner = JobRunner(store, lambda attempt: seen.put(attempt.job), threads=2,
                       lease_seconds=LONG_LEASE, poll_seconds=0.02, max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.claims >= 15, timeout=5)  # the lookout looked, again and again
        assert seen.empty(), "a job was taken while another owner's lease still held it"
        clock.now += 5.5
        job = seen.get(timeout=5)  # no notify: the lookout's poll finds it
        assert (job.event_id, job.attempts) == ("orphan", 2)
        assert runner.wait_until_idle(timeout=5)
    finally:
        runner.stop()
    assert seen.empty() and store.abandoned() == []


def test_a_failing_job_is_retried_with_backoff_then_abandoned_after_its_last_attempt(
    tmp_path: Path,
) -> None:
    store = SpyStore(tmp_path / "x.sqlite3")
    store.accept("poison", "messages", "{}")
    tries: list[Attempt] = []

    def process(attempt: Attempt) -> None:
        tries.append(attempt)
        raise RuntimeError("upstream keeps failing")

    runner = JobRunner(store, process, threads=2, lease_seconds=LONG_LEASE, poll_seconds=0.02,
                       max_attempts=3)
    runner.start()
    try:
        abandoned = poll_until(store.abandoned, timeout=10)
        claims = store.claims
        poll_until(lambda: store.claims >= claims + 15, timeout=5)  # it keeps looking...
        assert runner.running() == (4, 4)
    finally:
        runner.stop()
    assert [(t.job.event_id, t.job.attempts, t.last) for t in tries] == [
        ("poison", 1, False), ("poison", 2, False), ("poison", 3, True)]  # ...but not again
    # min(60, 2 ** attempts), asked after each failure but the last, which gives up at once
    assert store.backoffs == [2.0, 4.0]
    assert [(a.job.event_id, a.job.attempts, a.error) for a in abandoned] == [
        ("poison", 3, "too many attempts")]
    assert store.backlog() == 0


def test_a_job_that_fails_once_is_done_on_its_retry_and_every_thread_lives(
    tmp_path: Path,
) -> None:
    store = SpyStore(tmp_path / "x.sqlite3")
    store.accept("flaky", "messages", "{}")
    tries: list[tuple[int, bool]] = []

    def process(attempt: Attempt) -> None:
        tries.append((attempt.job.attempts, attempt.last))
        if attempt.job.attempts == 1:
            raise RuntimeError("upstream failed once")

    runner = JobRunner(store, process, threads=3, lease_seconds=LONG_LEASE, poll_seconds=0.02,
                       max_attempts=ATTEMPTS)
    runner.start()
    try:
        assert runner.wait_until_idle(timeout=10)
        assert runner.running() == (5, 5)
    finally:
        runner.stop()
    assert tries == [(1, False), (2, False)]
    assert store.backoffs == [2.0]
    assert store.abandoned() == []


def test_failing_claims_end_no_thread(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Storage that is away (StoreUnavailable) and a defect in the store (any other error) make
    claims fail many times: every thread lives on, and work is done once claims work again.
    Only the defects are logged as thread errors: the store itself says when it went away."""
    caplog.set_level(logging.ERROR, logger="bot.jobs.runner")
    store = SpyStore(tmp_path / "x.sqlite3")
    for _ in range(6):
        store.claim_failures += [StoreUnavailable("OperationalError: disk I/O error"),
                                 RuntimeError("a defect in the store")]
    done = threading.Event()
    runner = JobRunner(store, lambda attempt: done.set(), threads=3, lease_seconds=LONG_LEASE,
                       poll_seconds=0.02, max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: not store.claim_failures, timeout=5)
        claims = store.claims
        poll_until(lambda: store.claims >= claims + 5, timeout=5)  # claims work again
        assert runner.running() == (5, 5)
        store.accept("after", "messages", "{}")
        runner.notify()
        assert done.wait(timeout=5)
        assert runner.wait_until_idle(timeout=5)
        assert runner.running() == (5, 5)
    finally:
        runner.stop()
    thread_errors = [record for record in caplog.records
                     if record.getMessage().startswith("job thread error")]
    assert len(thread_errors) == 6  # one per RuntimeError, none for the outage


def test_wait_until_idle_returns_once_the_backlog_is_drained(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.sqlite3")
    events = [f"e-{number}" for number in range(6)]
    for event_id in events:
        store.accept(event_id, "messages", "{}")
    gate = threading.Event()
    processed: list[str] = []
    lock = threading.Lock()

    def process(attempt: Attempt) -> None:
        gate.wait(timeout=10)
        with lock:
            processed.append(attempt.job.event_id)

    # A 30 s poll: the threads drain the backlog by waking each other, never by polling.
    runner = JobRunner(store, process, threads=2, lease_seconds=LONG_LEASE, poll_seconds=30.0,
                       max_attempts=ATTEMPTS)
    runner.start()
    opener = threading.Timer(0.3, gate.set)
    opener.start()
    try:
        waited_from = time.monotonic()
        assert runner.wait_until_idle(timeout=30)
        assert store.backlog() == 0
        # Woken by the last job's end, not by its own timeout (the work takes a fraction of this).
        assert time.monotonic() - waited_from < 10
    finally:
        gate.set()
        opener.cancel()
        runner.stop()
    assert sorted(processed) == events


def test_wait_until_idle_is_false_on_timeout_while_a_job_is_stuck(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.sqlite3")
    store.accept("stuck", "messages", "{}")
    gate = threading.Event()
    started = threading.Event()

    def process(attempt: Attempt) -> None:
        started.set()
        gate.wait(timeout=10)

    runner = JobRunner(store, process, threads=2, lease_seconds=LONG_LEASE, poll_seconds=0.02,
                       max_attempts=ATTEMPTS)
    runner.start()
    try:
        assert started.wait(timeout=5)
        waited_from = time.monotonic()
        assert runner.wait_until_idle(timeout=0.5) is False
        assert time.monotonic() - waited_from >= 0.4  # it did wait before giving up
        assert store.backlog() == 1
        gate.set()
        assert runner.wait_until_idle(timeout=10) is True
    finally:
        gate.set()
        runner.stop()
