"""Jobs with a due time, on both engines: claimable from their due time and not before, run
once, cancelled or moved by id, kept across restarts and outages, left out of the backlog until
due, and waking a sleeping worker only when they come sooner than every other job."""

from __future__ import annotations

import queue
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from bot.jobs.runner import JobRunner
from bot.jobs.storage import BacklogFull, Store, StoreUnavailable, open_store
from bot.metrics.scrape import QueueCollector
from tests import test_storage
from tests.support.faults import RedisProcess
from tests.test_storage import START, Backend, FakeClock

# The engines under test, as test_storage makes them (fixtures, used by name).
backend, clock, redis_url, store = (
    test_storage.backend, test_storage.clock, test_storage.redis_url, test_storage.store)

HOUR = 3600.0


def test_a_due_job_is_claimable_from_its_due_time_not_before_and_runs_once(
    store: Store, clock: FakeClock
) -> None:
    assert store.schedule("remind-1", "reminder", '{"m": 1}', START + HOUR) is True
    assert store.claim("w", 30) is None
    clock.advance(HOUR - 0.001)
    assert store.claim("w", 30) is None
    clock.advance(0.001)
    job = store.claim("w", 30)
    assert job is not None
    assert (job.event_id, job.kind, job.payload, job.attempts) == (
        "remind-1", "reminder", '{"m": 1}', 1)
    assert (job.accepted_at, job.due_at) == (START, START + HOUR)
    assert store.claim("w2", 30) is None  # leased: once
    store.complete("remind-1", "w")
    clock.advance(HOUR)
    assert store.claim("w2", 30) is None
    assert store.schedule("remind-1", "reminder", "{}", START) is False  # done: remembered


def test_a_due_time_already_past_runs_at_once_and_waits_from_now(
    store: Store, clock: FakeClock
) -> None:
    assert store.schedule("late", "reminder", "{}", START - HOUR)
    assert store.seconds_until_due() == 0
    assert store.backlog() == 1 and store.oldest_waiting() == START  # not an hour old
    job = store.claim("w", 30)
    assert job is not None and job.due_at == START


def test_scheduling_an_id_again_changes_nothing(store: Store, clock: FakeClock) -> None:
    assert store.schedule("job", "reminder", "first", START + 60)
    assert store.schedule("job", "reminder", "second", START + 10) is False
    assert store.accept("job", "reminder", "third") is False
    clock.advance(10)
    assert store.claim("w", 30) is None  # still due at +60, as first scheduled
    clock.advance(50)
    job = store.claim("w", 30)
    assert job is not None and job.payload == "first"


def test_a_finished_due_job_is_remembered_for_the_retention_from_its_due_time(
    backend: Backend, clock: FakeClock
) -> None:
    store = backend.make(retention_seconds=HOUR)
    assert store.schedule("job", "reminder", "{}", START + 5 * HOUR)
    clock.advance(5 * HOUR)
    job = store.claim("w", 30)
    assert job is not None
    store.complete("job", "w")
    clock.advance(HOUR - 1)  # six hours after it was scheduled: still within an hour of its due
    assert store.schedule("job", "reminder", "{}", clock.now) is False
    clock.advance(2)
    assert store.schedule("job", "reminder", "{}", clock.now) is True


def test_claims_take_the_job_due_first(store: Store, clock: FakeClock) -> None:
    assert store.schedule("due-at-5", "reminder", "{}", START + 5)
    assert store.accept("accepted-at-0", "messages", "{}")
    clock.advance(10)
    assert store.accept("accepted-at-10", "messages", "{}")
    claimed = [store.claim("w", 30) for _ in range(4)]
    assert [job.event_id for job in claimed if job] == [
        "accepted-at-0", "due-at-5", "accepted-at-10"]
    assert claimed[-1] is None


def test_cancel_takes_a_job_away_waiting_or_running(store: Store, clock: FakeClock) -> None:
    assert store.schedule("waiting", "reminder", "{}", START + 60)
    assert store.schedule("running", "reminder", "{}", START)
    assert store.cancel("waiting") is True
    running = store.claim("w", 30)
    assert running is not None and running.event_id == "running"
    assert store.cancel("running") is True
    assert store.extend("running", "w", 30) is False  # the attempt learns it is no longer its own
    store.retry_later("running", "w", 5)  # and cannot bring it back
    clock.advance(HOUR)
    assert store.claim("w", 30) is None
    assert (store.backlog(), store.scheduled(), store.seconds_until_due()) == (0, 0, None)
    assert store.cancel("waiting") is False
    assert store.cancel("never-stored") is False
    assert store.schedule("waiting", "reminder", "{}", clock.now) is False  # remembered


def test_reschedule_moves_a_job_and_takes_a_running_one_back(
    store: Store, clock: FakeClock
) -> None:
    assert store.schedule("later", "reminder", "{}", START + 60)
    assert store.reschedule("later", START + 120) is True
    clock.advance(60)
    assert store.claim("w", 30) is None
    assert store.reschedule("later", START + 61) is True  # earlier again
    clock.advance(1)
    first = store.claim("w", 30)
    assert first is not None and (first.attempts, first.due_at) == (1, START + 61)
    assert store.reschedule("later", START + 100) is True  # moved while it runs
    assert store.extend("later", "w", 30) is False
    store.complete("later", "w")  # the old attempt's end does not finish the moved job
    clock.advance(38.9)
    assert store.claim("w", 30) is None
    clock.advance(0.1)
    again = store.claim("w2", 30)
    assert again is not None and (again.attempts, again.due_at) == (1, START + 100)
    store.complete("later", "w2")
    assert store.reschedule("later", START + 200) is False  # finished
    assert store.reschedule("never-stored", START) is False


def test_rescheduling_into_the_past_runs_it_at_once(store: Store, clock: FakeClock) -> None:
    assert store.schedule("job", "reminder", "{}", START + HOUR)
    assert store.reschedule("job", START - HOUR)
    job = store.claim("w", 30)
    assert job is not None and job.due_at == START


def test_the_backlog_and_its_bound_count_only_jobs_due_by_now(
    store: Store, clock: FakeClock
) -> None:
    for number in range(3):
        assert store.schedule(f"later-{number}", "reminder", "{}", START + 60 + number)
    assert (store.backlog(), store.scheduled(), store.oldest_waiting()) == (0, 3, None)
    assert store.accept("e-1", "messages", "{}", max_backlog=2)
    assert store.accept("e-2", "messages", "{}", max_backlog=2)
    with pytest.raises(BacklogFull):
        store.accept("e-3", "messages", "{}", max_backlog=2)
    assert store.schedule("later-3", "reminder", "{}", START + 30)  # never refused
    clock.advance(60)
    # Due now, and never claimed: no worker has moved them, and they count all the same.
    assert (store.backlog(), store.scheduled()) == (4, 2)
    assert store.oldest_waiting() == START  # e-1, accepted at START, waits longest
    for event_id in ("e-1", "e-2"):
        job = store.claim("w", 30)
        assert job is not None and job.event_id == event_id
        store.complete(event_id, "w")
    assert store.oldest_waiting() == START + 30
    with pytest.raises(BacklogFull):
        store.accept("e-3", "messages", "{}", max_backlog=2)


def test_seconds_until_due_counts_due_times_leases_and_backoffs(
    store: Store, clock: FakeClock
) -> None:
    assert store.seconds_until_due() is None
    assert store.schedule("later", "reminder", "{}", START + 60)
    assert store.seconds_until_due() == 60
    clock.advance(10)
    assert store.seconds_until_due() == 50
    assert store.accept("now", "messages", "{}")
    assert store.seconds_until_due() == 0
    assert store.claim("w", 30) is not None
    assert store.seconds_until_due() == 30  # the lease runs out before the scheduled job is due
    store.retry_later("now", "w", 5)
    assert store.seconds_until_due() == 5


def test_a_job_due_sooner_than_every_other_wakes_a_waiter_in_another_instance(
    backend: Backend, clock: FakeClock
) -> None:
    waiter, other = backend.make(), backend.make()
    assert waiter.wait_for_work(0.01) is False  # waiting from now on (SQLite: the pipe is open)
    assert other.schedule("at-100", "reminder", "{}", START + 100)
    assert waiter.wait_for_work(5) is True  # the first: sooner than nothing
    assert other.schedule("at-200", "reminder", "{}", START + 200)
    assert waiter.wait_for_work(0.2) is False  # later than what a waiter already waits for
    assert other.schedule("at-50", "reminder", "{}", START + 50)
    assert waiter.wait_for_work(5) is True
    assert other.reschedule("at-200", START + 300)
    assert waiter.wait_for_work(0.2) is False
    assert other.reschedule("at-200", START + 10)
    assert waiter.wait_for_work(5) is True
    assert other.accept("now", "messages", "{}")
    assert waiter.wait_for_work(5) is True
    assert other.claim("w", 30) is not None
    other.retry_later("now", "w", 60)  # after the job due at +10: no need to wake anyone
    assert waiter.wait_for_work(0.2) is False
    assert other.claim("w", 30) is None
    clock.advance(10)
    assert other.claim("w", 30) is not None  # at-200, moved to +10
    other.retry_later("at-200", "w", 5)  # sooner than every other job now
    assert waiter.wait_for_work(5) is True
    assert other.cancel("at-50")
    assert waiter.wait_for_work(0.2) is False


def test_due_jobs_are_kept_when_the_store_is_opened_again(
    backend: Backend, clock: FakeClock
) -> None:
    first = backend.make()
    assert first.schedule("job", "reminder", "kept", START + HOUR)
    first.close()
    again = backend.make()
    assert again.scheduled() == 1 and again.claim("w", 30) is None
    clock.advance(HOUR)
    job = again.claim("w", 30)
    assert job is not None and job.payload == "kept"


def test_a_sleeping_runner_wakes_for_a_job_another_instance_schedules_sooner(
    backend: Backend,
) -> None:
    """As from another process: the runner sleeps until a job due in an hour (its recheck a
    minute away); a job due in half a second, stored through another instance, runs then."""
    store, other = backend.make(clock=time.time), backend.make(clock=time.time)
    assert store.schedule("in-an-hour", "reminder", "{}", time.time() + HOUR)
    ran: queue.Queue[str] = queue.Queue()
    runner = JobRunner(store, lambda attempt: ran.put(attempt.job.event_id), threads=2,
                       lease_seconds=30, max_attempts=3, recheck_seconds=60.0)
    runner.start()
    try:
        time.sleep(0.3)  # asleep on the wake-up by now
        assert other.schedule("soon", "reminder", "{}", time.time() + 0.5)
        assert ran.get(timeout=10) == "soon"
        assert ran.empty()
    finally:
        runner.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_due_job_outlives_a_redis_restart_and_an_outage_in_between(
    redis_server: RedisProcess, clock: FakeClock
) -> None:
    store = open_store(redis_server.url, clock=clock)
    try:
        assert store.schedule("job", "reminder", "kept", START + HOUR)
        redis_server.stop()
        clock.advance(HOUR)  # it falls due while storage is away
        with pytest.raises(StoreUnavailable):
            store.claim("w", 30)
        with pytest.raises(StoreUnavailable):
            store.reschedule("job", START)
        redis_server.start()
        job = store.claim("w", 30)
        assert job is not None and (job.payload, job.attempts, job.due_at) == (
            "kept", 1, START + HOUR)
        assert store.claim("w2", 30) is None
    finally:
        store.close()


def test_the_queue_metrics_leave_jobs_due_later_out_and_count_them_apart(
    store: Store, clock: FakeClock
) -> None:
    assert store.accept("now", "messages", "{}")
    assert store.schedule("later", "reminder", "{}", START + HOUR)
    clock.advance(5)
    found = CollectorRegistry()
    found.register(QueueCollector(store, clock=clock))
    assert found.get_sample_value("icbot_queue_jobs") == 1
    assert found.get_sample_value("icbot_queue_oldest_job_age_seconds") == 5
    assert found.get_sample_value("icbot_scheduled_jobs") == 1
