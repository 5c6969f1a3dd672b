"""The job runner on its own: wake-ups, the lookout, leases, attempts, errors, idleness.

Each test runs a real `JobRunner` over a real SQLite file. Where a test must see what the runner
asks of the store (how often it claims, which backoff it sets) the store is a `SpyStore`, the
SQLite engine with counters, or any store behind a `CountingStore`; where it must decide when a
job is due, the store reads a `HandClock`. Nothing asserts a tight timing: the tests wait for
outcomes with generous timeouts and compare counts with wide margins, so a busy machine makes
them slower, never red.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bot.jobs.runner import Attempt, JobRunner
from bot.jobs.storage import Clock, Job, Store, StoreUnavailable, open_store
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
        self.looks = 0  # how often the lookout asked when a job comes next
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

    def seconds_until_due(self) -> float | None:
        with self._spy_lock:
            self.looks += 1
        return super().seconds_until_due()

    def retry_later(self, event_id: str, owner: str, delay_seconds: float) -> None:
        with self._spy_lock:
            self.backoffs.append(delay_seconds)
        super().retry_later(event_id, owner, QUICK_BACKOFF)


class CountingStore:
    """Any store, counting the calls made to it by name (a proxy)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return method(*args, **kwargs)

        return counted

    def reads(self) -> int:
        """Calls that look at or change the queue: all but the waits on its wake-up and the
        heartbeat's."""
        with self._lock:
            return sum(count for name, count in self.calls.items()
                       if name not in ("wait_for_work", "heartbeat", "extend"))


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


def test_an_idle_runner_reads_the_queue_once_per_due_job_not_in_a_loop(tmp_path: Path) -> None:
    """Eight idle threads and a job due in an hour (by the store's clock): the runner looks at
    the queue once and sleeps on the wake-up, in slices that read nothing, until the job is
    due, a ring or the recheck."""
    poll = 0.05
    clock = HandClock()
    store = CountingStore(SqliteStore(tmp_path / "x.sqlite3", clock=clock))
    store.schedule("in-an-hour", "reminder", "{}", clock.now + 3600)
    runner = JobRunner(cast(Store, store), lambda attempt: None, threads=8,
                       lease_seconds=LONG_LEASE, poll_seconds=poll, recheck_seconds=60.0,
                       max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.calls["claim"] >= 8, timeout=5)  # every thread's first look
        time.sleep(0.2)
        before, waits, started = store.reads(), store.calls["wait_for_work"], time.monotonic()
        time.sleep(1.0)
        reads, elapsed = store.reads() - before, time.monotonic() - started
        waits = store.calls["wait_for_work"] - waits
    finally:
        runner.stop()
    assert reads == 0, f"{reads} reads of the queue in {elapsed:.2f} s while nothing was due"
    assert 0 < waits <= 1.5 * elapsed / poll, f"{waits} waits of {poll} s in {elapsed:.2f} s"


def test_a_due_job_runs_at_its_time_not_before_and_not_at_the_recheck(tmp_path: Path) -> None:
    store = CountingStore(SqliteStore(tmp_path / "x.sqlite3"))
    ran: queue.Queue[tuple[Job, float]] = queue.Queue()
    runner = JobRunner(cast(Store, store), lambda attempt: ran.put((attempt.job, time.time())),
                       threads=2, lease_seconds=LONG_LEASE, poll_seconds=0.5,
                       recheck_seconds=60.0, max_attempts=ATTEMPTS)
    runner.start()
    try:
        poll_until(lambda: store.calls["claim"] >= 2, timeout=5)
        due_at = time.time() + 1.0
        store.schedule("soon", "reminder", "{}", due_at)
        job, ran_at = ran.get(timeout=10)
        reads = store.reads()
    finally:
        runner.stop()
    assert job.event_id == "soon" and ran_at >= due_at
    assert ran_at - due_at < 5, "woken by the recheck, not by the due time"
    assert reads < 12, f"{reads} reads of the queue while one job came due"


def test_a_job_scheduled_sooner_in_another_process_wakes_the_runner(tmp_path: Path) -> None:
    """The runner sleeps until a job due in an hour; another process schedules one due in half a
    second: it runs then, not at the recheck a minute later."""
    path = tmp_path / "x.sqlite3"
    store = open_store(f"sqlite:///{path}")
    store.schedule("in-an-hour", "reminder", "{}", time.time() + 3600)
    ran: queue.Queue[str] = queue.Queue()
    runner = JobRunner(store, lambda attempt: ran.put(attempt.job.event_id), threads=2,
                       lease_seconds=LONG_LEASE, poll_seconds=0.5, recheck_seconds=60.0,
                       max_attempts=ATTEMPTS)
    runner.start()
    try:
        time.sleep(0.3)  # the lookout sleeps on the doorbell by now
        schedule = ("import time; from bot.jobs.storage import open_store; "
                    f"open_store('sqlite:///{path}').schedule('soon', 'reminder', '{{}}', "
                    "time.time() + 0.5)")
        subprocess.run([sys.executable, "-c", schedule], check=True, timeout=60)
        assert ran.get(timeout=10) == "soon"
        assert ran.empty()
    finally:
        runner.stop()


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
        looked = other_store.looks
    finally:
        first.stop()
        second.stop()
    assert calls == [("first", 1)]
    # It looked whenever the lease would have run out, had the heartbeat not renewed it.
    assert looked >= 3, f"the second runner hardly looked ({looked} looks): this proves nothing"


def test_the_job_of_a_worker_that_died_is_claimed_again_once_its_lease_runs_out(
    tmp_path: Path,
) -> None:
    """Nothing rings when a lease runs out: the runner knows when it will, from the store."""
    store = SpyStore(tmp_path / "x.sqlite3")
    store.accept("orphan", "messages", "{}")
    assert store.claim("host:1234:dead", 1.0) is not None  # claimed, then the process died
    lease_ends = time.monotonic() + 1.0
    seen: queue.Queue[Job] = queue.Queue()
    runner = JobRunner(store, lambda attempt: seen.put(attempt.job), threads=2,
                       lease_seconds=LONG_LEASE, poll_seconds=0.5, recheck_seconds=60.0,
                       max_attempts=ATTEMPTS)
    runner.start()
    try:
        job = seen.get(timeout=10)
        assert time.monotonic() >= lease_ends, "taken while another owner's lease still held it"
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
        time.sleep(0.3)  # time enough for another try, were one made
        assert runner.running() == (4, 4)
    finally:
        runner.stop()
    assert [(t.job.event_id, t.job.attempts, t.last) for t in tries] == [
        ("poison", 1, False), ("poison", 2, False), ("poison", 3, True)]  # not again
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
    store.accept("waiting", "messages", "{}")  # claimable all along: the runner keeps trying
    done = threading.Event()
    runner = JobRunner(store, lambda attempt: done.set(), threads=3, lease_seconds=LONG_LEASE,
                       poll_seconds=0.02, max_attempts=ATTEMPTS)
    runner.start()
    try:
        assert done.wait(timeout=10)  # taken once claims work again
        assert not store.claim_failures
        assert runner.running() == (5, 5)
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


def test_a_runner_whose_claims_are_refused_looks_once_a_slice_not_in_a_loop(
    tmp_path: Path,
) -> None:
    """Its owner was released (it was thought dead): a job is claimable, yet every claim of
    this runner is refused. It looks again once per slice, not as fast as it can."""
    poll = 0.1
    store = CountingStore(SqliteStore(tmp_path / "x.sqlite3"))
    store.accept("e-1", "messages", "{}")
    store.release("host:1:released")
    runner = JobRunner(cast(Store, store), lambda attempt: None, threads=2,
                       lease_seconds=LONG_LEASE, poll_seconds=poll, recheck_seconds=60.0,
                       max_attempts=ATTEMPTS, owner="host:1:released")
    runner.start()
    try:
        time.sleep(0.3)
        before, started = store.reads(), time.monotonic()
        time.sleep(1.0)
        reads, elapsed = store.reads() - before, time.monotonic() - started
    finally:
        runner.stop()
    assert store.calls["claim"] > 2, "it never tried again"
    assert reads <= 4 * elapsed / poll, f"{reads} reads in {elapsed:.2f} s"
