"""Fault tests: no event lost, none done twice, against the bot under gunicorn and the sandbox.

Each test starts the bot as deployed (``python -m bot serve``), hurts it (killed web and worker
processes, redelivered webhooks, a rate-limited Webex, a slow or dead broker, more load than it can
take) and counts outcomes from what the sandbox received. Every test is bounded in time and in
count, prints a one-line summary and writes its figures to ``tests/.fault-figures/<test>.json``.
Run with ``python -m pytest -m slow tests/test_faults.py``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bot.devtools.sandbox import Delivery
from bot.settings import Settings
from bot.upstream.retry import RetryPolicy
from tests.support.faults import (
    Fleet,
    Killer,
    Planned,
    broker_calls_per_meeting,
    count_outcomes,
    cpu_seconds,
    fleet,
    kill_a_worker_mid_submit,
    log_lines,
    percentile,
    poll_until,
    redis_server,
    redis_url_for,
    report,
    requests_for_room,
    rss_bytes,
)

pytestmark = pytest.mark.slow

LEASE_SECONDS = "2"
SEND_LATENCY = 0.2
OUTCOME_TIMEOUT = 60.0


@dataclass(frozen=True)
class Deployment:
    """How many bot instances, on which store."""

    name: str
    instances: int
    engine: str  # "sqlite" or "redis"


ONE_SQLITE = Deployment("one-instance-sqlite", 1, "sqlite")
TWO_REDIS = Deployment("two-instances-redis", 2, "redis")
DEPLOYMENTS = [pytest.param(ONE_SQLITE, id=ONE_SQLITE.name),
               pytest.param(TWO_REDIS, id=TWO_REDIS.name)]


@pytest.fixture(scope="module")
def redis_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """One redis-server for the module when installed; None (and the tests skip) otherwise."""
    if shutil.which("redis-server") is None:
        yield None
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def storage_for(deployment: Deployment, redis_base: str | None) -> str | None:
    """The STORAGE_URL a deployment uses; skips when it needs Redis and none is installed."""
    if deployment.engine == "sqlite":
        return None
    if redis_base is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): "
                    "the several-instances variant needs a real Redis")
    return redis_url_for(redis_base)


def wait_for_outcomes(crew: Fleet, events: list[Planned], timeout: float) -> None:
    """Block until every event's space has a reply from the bot, then until the store is idle."""
    rooms = {event.room_id for event in events}

    def answered() -> bool:
        done = {
            (r.json or {}).get("roomId")
            for r in crew.sandbox.requests_matching("POST", "/v1/messages")
            if r.status == 200 and isinstance(r.json, dict)
        }
        return rooms <= done

    started = time.monotonic()
    crew.sandbox.wait_for(answered, timeout)
    crew.wait_idle(max(1.0, timeout - (time.monotonic() - started)))


def spread(crew: Fleet, deliveries: list[Delivery]) -> list[int]:
    """How many deliveries each bot instance received."""
    per_hook = Counter(delivery.webhook_id for delivery in deliveries)
    return [sum(per_hook[hook] for hook in hooks) for hooks in zip(*crew.hooks.values(),
                                                                    strict=True)]


# 1 and 5: workers killed at random moments --------------------------------------------------


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_killed_workers_lose_nothing_and_do_nothing_twice(
    deployment: Deployment, redis_base: str | None, tmp_path: Path
) -> None:
    """SIGKILL random web and worker processes while 80 events arrive: each has exactly one
    outcome."""
    started = time.monotonic()
    seed = 20240611 + deployment.instances
    with fleet(tmp_path, instances=deployment.instances, workers=2, seed=seed,
               storage_url=storage_for(deployment, redis_base),
               JOB_LEASE_SECONDS=LEASE_SECONDS) as crew:
        forms = crew.forms(20)
        events = [crew.help_event() for _ in range(60)]
        events += [crew.submit_event(person, form_id, f"Crash form {number:02d}")
                   for number, (person, form_id) in enumerate(forms)]
        random.Random(seed).shuffle(events)
        # Webex takes a moment to create a message, as it does for real: the kills then often
        # land between Webex creating a reply and the bot recording that it did.
        crew.sandbox.fail("POST", "/v1/messages", status=None, latency=SEND_LATENCY)
        killer = Killer(crew, {"web": 2 * deployment.instances, "worker": deployment.instances},
                        random.Random(seed),
                        max_kills=6 * deployment.instances)
        killer.start()
        try:
            deliveries = crew.deliver_all(events)
            assert all(200 <= made[-1].status < 300 for made in deliveries), "an event never got in"
            wait_for_outcomes(crew, events, OUTCOME_TIMEOUT)
        finally:
            killer.stop()
        crew.wait_idle(OUTCOME_TIMEOUT)  # jobs of workers killed after the last reply
        ledger = count_outcomes(crew, events)
        figures = {
            "deployment": deployment.name,
            "events": len(events),
            "deliveries": sum(len(made) for made in deliveries),
            "deliveries_per_instance": spread(crew, [d for made in deliveries for d in made]),
            "redelivered_events": sum(len(made) > 1 for made in deliveries),
            "web_processes_killed": killer.killed.count("web"),
            "worker_processes_killed": killer.killed.count("worker"),
            "sends_in_doubt_looked_up": len(crew.sandbox.requests_matching("GET", "/v1/messages")),
            **ledger.figures(),
            "max_broker_calls_per_meeting": broker_calls_per_meeting(crew),
            "seconds": round(time.monotonic() - started, 1),
        }
    report(f"crash-{deployment.name}", figures)
    assert figures["web_processes_killed"] >= 1 and figures["worker_processes_killed"] >= 1, \
        "the killer did not strike both kinds of process: the test proved nothing"
    ledger.assert_exactly_once()


# 2 and 5: every webhook delivered three times at once ----------------------------------------


COPIES = 3


def deliver_thrice_at_once(crew: Fleet, events: list[Planned]) -> list[list[int]]:
    """Deliver every event three times concurrently (a barrier per event); the statuses."""
    barriers = {event.event_id: threading.Barrier(COPIES, timeout=30) for event in events}

    def one_copy(event: Planned) -> int:
        barriers[event.event_id].wait()
        return crew.deliver(event).status

    copies = [event for event in events for _ in range(COPIES)]
    with ThreadPoolExecutor(4 * COPIES) as pool:
        statuses = list(pool.map(one_copy, copies))
    return [statuses[i:i + COPIES] for i in range(0, len(statuses), COPIES)]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_each_webhook_delivered_three_times_at_once_has_one_outcome(
    deployment: Deployment, redis_base: str | None, tmp_path: Path
) -> None:
    """Three simultaneous deliveries of every event (to any instance): one outcome each."""
    started = time.monotonic()
    with fleet(tmp_path, instances=deployment.instances, workers=2, seed=5,
               storage_url=storage_for(deployment, redis_base)) as crew:
        forms = crew.forms(10)
        events = [crew.help_event() for _ in range(20)]
        events += [crew.submit_event(person, form_id, f"Echo form {number:02d}")
                   for number, (person, form_id) in enumerate(forms)]
        before = len(crew.sandbox.deliveries)
        statuses = deliver_thrice_at_once(crew, events)
        deliveries = crew.sandbox.deliveries[before:]
        assert all(status == 200 for copies in statuses for status in copies), statuses
        wait_for_outcomes(crew, events, OUTCOME_TIMEOUT)
        ledger = count_outcomes(crew, events)
        figures = {
            "deployment": deployment.name,
            "events": len(events),
            "deliveries": len(deliveries),
            "deliveries_per_instance": spread(crew, deliveries),
            **ledger.figures(),
            "max_broker_calls_per_meeting": broker_calls_per_meeting(crew),
            "seconds": round(time.monotonic() - started, 1),
        }
    report(f"redelivery-{deployment.name}", figures)
    ledger.assert_exactly_once()
    assert figures["max_broker_calls_per_meeting"] == 1, "a duplicate delivery reached the broker"


# 3: Webex rate-limits the bot's replies --------------------------------------------------------

LIMITED_REQUESTS = 30
LIMITED_EVENTS = 10
PROBE_PACE = 0.05  # seconds between acknowledgement probes while the limit lasts
PROBE_BUDGET = 400
ACK_P99_BOUND = 0.2
CPU_SHARE_BOUND = 0.5  # of one core, both workers together, averaged over the limit
SHORT_LEASE = "1"  # shorter than the Retry-After waits of one call: the lease must be renewed


def test_rate_limited_replies_arrive_once_without_spinning(tmp_path: Path) -> None:
    """429 with Retry-After on every reply for a while: replies arrive once, late, calmly."""
    started = time.monotonic()
    with fleet(tmp_path, workers=2, seed=3, JOB_LEASE_SECONDS=SHORT_LEASE) as crew:
        warm = crew.help_event()
        crew.deliver_all([warm])
        wait_for_outcomes(crew, [warm], OUTCOME_TIMEOUT)
        pids = crew.pids()
        cpu_before, limit_from = cpu_seconds(pids), time.monotonic()
        events = [crew.help_event() for _ in range(LIMITED_EVENTS)]
        crew.sandbox.fail("POST", "/v1/messages", status=429, times=LIMITED_REQUESTS,
                          retry_after="1")
        acks = [made[-1] for made in crew.deliver_all(events)]
        halt = threading.Event()
        for probe in range(PROBE_BUDGET):  # duplicates: the front door must stay quick
            if not crew.sandbox.faults or halt.wait(PROBE_PACE):
                break
            acks.append(crew.deliver(events[probe % len(events)]))
        limit_lasted = time.monotonic() - limit_from
        wait_for_outcomes(crew, events, OUTCOME_TIMEOUT)
        wall, cpu = time.monotonic() - limit_from, cpu_seconds(pids) - cpu_before
        same_workers = crew.pids() == pids
        ledger = count_outcomes(crew, events)
        attempts = [len(requests_for_room(crew.sandbox, "POST", "/v1/messages", e.room_id))
                    for e in events]
        latencies = [ack.elapsed_seconds for ack in acks]
        per_event_bound = RetryPolicy().max_attempts * Settings.max_attempts
        figures = {
            "events": len(events),
            "limited_requests": LIMITED_REQUESTS,
            "reply_attempts": sum(attempts),
            "max_attempts_per_event": max(attempts),
            "policy_bound_per_event": per_event_bound,
            "limit_lasted_s": round(limit_lasted, 2),
            "acks": len(acks),
            "ack_p50_ms": round(1000 * percentile(latencies, 0.5), 1),
            "ack_p99_ms": round(1000 * percentile(latencies, 0.99), 1),
            "worker_cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2),
            **ledger.figures(),
            "seconds": round(time.monotonic() - started, 1),
        }
    report("rate-limit", figures)
    assert same_workers, "a worker died or was replaced during the limit"
    ledger.assert_exactly_once()
    assert all(ack.status == 200 for ack in acks)
    assert sum(attempts) == LIMITED_REQUESTS + len(events), "an attempt beyond the limit's end"
    assert max(attempts) <= per_event_bound
    assert limit_lasted >= 1.0, "the 429s were used up without waiting for Retry-After"
    assert cpu < CPU_SHARE_BOUND * wall, "the workers spun while rate limited"
    assert percentile(latencies, 0.99) < ACK_P99_BOUND


# 4: the broker slow or down ------------------------------------------------------------------

READ_TIMEOUT = 1.0
HELP_BOUND = 1.0
SLACK = 2.0


def broker_outcome_bound(retried: bool) -> float:
    """How long a submit may take: every attempt timing out, every backoff waited, and slack."""
    policy = RetryPolicy()
    if not retried:
        return READ_TIMEOUT + SLACK
    waits = sum(policy.delay(attempt, None) for attempt in range(1, policy.max_attempts))
    return policy.max_attempts * READ_TIMEOUT + waits + SLACK


@pytest.mark.parametrize(("fault", "told", "retried"), [
    pytest.param({"latency": 4.0, "status": None}, "did not answer in time", False, id="slow"),
    pytest.param({"status": 503}, "temporarily unavailable", True, id="down"),
])
def test_broker_trouble_is_told_in_bounded_time_and_holds_nobody_up(
    fault: dict[str, float | None], told: str, retried: bool, tmp_path: Path
) -> None:
    """A slow or dead broker: the person hears why in bounded time; others are still served."""
    started = time.monotonic()
    with fleet(tmp_path, workers=2, seed=4, IC_READ_TIMEOUT=str(READ_TIMEOUT)) as crew:
        [(person, form_id)] = crew.forms(1)
        crew.sandbox.fail("POST", "/api/v2/joseencrypt", **fault)
        submit = crew.submit_event(person, form_id, "Broker trouble")
        submitted_at = time.monotonic()
        crew.deliver_all([submit])
        crew.sandbox.wait_for(lambda: crew.sandbox.requests_matching(
            "GET", f"/v1/attachment/actions/{submit.event_id}"), timeout=10)
        other = crew.help_event()
        asked_at = time.monotonic()
        crew.deliver_all([other])
        crew.sandbox.wait_for(lambda: crew.bot_messages(other.room_id), timeout=10)
        help_seconds = time.monotonic() - asked_at
        [reply] = crew.sandbox.wait_for(lambda: [
            m for m in crew.bot_messages(submit.room_id) if m["id"] != form_id], timeout=30)
        outcome_seconds = time.monotonic() - submitted_at
        crew.wait_idle(OUTCOME_TIMEOUT)
        calls = crew.sandbox.wait_for(
            lambda: crew.sandbox.requests_matching("POST", "/api/v2/joseencrypt"), timeout=10)
        form = crew.sandbox.message(form_id) or {}
        figures = {
            "fault": "slow" if fault.get("latency") else "down",
            "help_answered_s": round(help_seconds, 2),
            "submit_outcome_s": round(outcome_seconds, 2),
            "outcome_bound_s": broker_outcome_bound(retried),
            "broker_attempts": len(calls),
            "seconds": round(time.monotonic() - started, 1),
        }
    report(f"broker-{figures['fault']}", figures)
    assert told in reply["markdown"] and "Instant Connect" in reply["markdown"]
    assert not form.get("deleted"), "the form was retired though no meeting was made"
    assert outcome_seconds <= broker_outcome_bound(retried), "a worker hung past its timeout"
    assert help_seconds <= HELP_BOUND, "another conversation was held up by the broker"
    assert len(calls) <= (RetryPolicy().max_attempts if retried else 1)


# 6: more load than the bot can take ------------------------------------------------------------

MAX_BACKLOG = 20
FLOOD = 400
FLOOD_THREADS = 8
RSS_GROWTH_BOUND = 16 * 1024 * 1024  # per worker process


def test_a_flood_is_refused_beyond_the_backlog_and_what_was_taken_is_done(
    tmp_path: Path,
) -> None:
    """Deliveries beyond MAX_BACKLOG get 503; memory stays flat; every accepted one is done."""
    started = time.monotonic()
    with fleet(tmp_path, workers=2, seed=6, MAX_BACKLOG=str(MAX_BACKLOG),
               WORKER_THREADS="2") as crew:
        warm = [crew.help_event() for _ in range(4)]
        crew.deliver_all(warm)
        wait_for_outcomes(crew, warm, OUTCOME_TIMEOUT)
        pids = crew.pids()
        rss_before = {pid: rss_bytes(pid) for pid in pids}
        events = [crew.help_event() for _ in range(FLOOD)]
        crew.sandbox.fail("POST", "/v1/messages", status=None, latency=0.5)
        deepest = [0]
        flood_over = threading.Event()

        def watch_backlog() -> None:
            while not flood_over.wait(0.01):  # polls the shared store while the flood lasts
                deepest[0] = max(deepest[0], crew.store.backlog())

        watcher = threading.Thread(target=watch_backlog, daemon=True)
        flood_from = time.monotonic()
        watcher.start()
        with ThreadPoolExecutor(FLOOD_THREADS) as pool:
            acks = list(pool.map(crew.deliver, events))
        flood_over.set()
        watcher.join(timeout=5)
        flood_seconds = time.monotonic() - flood_from
        accepted = [e for e, ack in zip(events, acks, strict=True) if ack.status == 200]
        refused = [e for e, ack in zip(events, acks, strict=True) if ack.status == 503]
        wait_for_outcomes(crew, accepted, OUTCOME_TIMEOUT)
        rss_after = {pid: rss_bytes(pid) for pid in pids}
        ledger = count_outcomes(crew, accepted)
        replies_to_refused = sum(bool(crew.bot_messages(e.room_id)) for e in refused)
        backlog_full_lines = log_lines(crew.bots, "backlog full")
        growth = max(rss_after[pid] - rss_before[pid] for pid in pids)
        figures = {
            "deliveries": len(events),
            "accepted": len(accepted),
            "refused_503": len(refused),
            "other_statuses": len(events) - len(accepted) - len(refused),
            "deepest_backlog": deepest[0],
            "backlog_full_log_lines": backlog_full_lines,
            "rss_before_mb": round(sum(rss_before.values()) / 2**20, 1),
            "rss_after_mb": round(sum(rss_after.values()) / 2**20, 1),
            "max_rss_growth_mb": round(growth / 2**20, 2),
            "flood_s": round(flood_seconds, 2),
            **ledger.figures(),
            "seconds": round(time.monotonic() - started, 1),
        }
    report("backpressure", figures)
    assert refused and accepted, "the flood did not reach the limit, or nothing got in"
    assert len(accepted) + len(refused) == len(events)
    ledger.assert_exactly_once()
    # The store checks the bound in the same atomic step as it accepts: it is exact.
    assert deepest[0] <= MAX_BACKLOG, "the backlog grew past its bound"
    # Said once per web process when refusing starts, not once per refused delivery.
    assert 1 <= backlog_full_lines <= len(pids)
    assert replies_to_refused == 0, "a refused event was processed anyway"
    assert growth < RSS_GROWTH_BOUND, "worker memory grew under the flood"


# 6: a worker process killed: its jobs and readiness ------------------------------------------

KILL_RUNS = 3
READINESS_WATCH_SECONDS = 60.0  # the worker's lease: a liveness that outlives its process ends


@pytest.mark.parametrize("engine", ["sqlite", "redis"])
def test_a_killed_worker_processs_jobs_and_readiness_follow_at_once(
    engine: str, redis_base: str | None, tmp_path: Path
) -> None:
    """SIGKILL the worker process while it waits on the broker for a submit, with the default
    60 s lease, several times: the seconds from the kill to the links message; then SIGKILL an
    idle one: the seconds until /readyz says no worker process runs."""
    deployment = Deployment(f"one-instance-{engine}", 1, engine)
    with fleet(tmp_path, storage_url=storage_for(deployment, redis_base), seed=61) as crew:
        [bot] = crew.bots
        submits, to_links = [], []
        for run in range(KILL_RUNS):
            submit, seconds = kill_a_worker_mid_submit(crew, f"Killed mid form {run}")
            submits.append(submit)
            to_links.append(round(seconds, 2))
        poll_until(bot.worker_pids, timeout=30)
        [worker] = bot.worker_pids()
        os.kill(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            poll_until(lambda: not requests.get(bot.url + "/readyz", timeout=5).ok,
                       timeout=READINESS_WATCH_SECONDS)
            to_not_ready: float | None = round(time.monotonic() - killed_at, 2)
        except TimeoutError:
            to_not_ready = None  # ready all along
        ledger = count_outcomes(crew, submits)
    figures = {"engine": engine, "runs": KILL_RUNS, "kill_to_links_seconds": to_links,
               "median_kill_to_links_seconds": statistics.median(to_links),
               "kill_to_not_ready_seconds": to_not_ready, **ledger.figures()}
    report(f"worker-killed-{engine}", figures)
    ledger.assert_exactly_once()
    assert max(to_links) < 20, "a dead worker's job waited for its lease"
    assert to_not_ready is not None and to_not_ready < 5
