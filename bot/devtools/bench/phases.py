"""The measurements, each a function of a :class:`Stage`: a bot, its sandbox and the driver.

Every phase waits until the bot's last upstream call of the phase is recorded, so the next
phase starts from a quiet bot and the requests of a phase are exactly its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.devtools.bench.driver import Driver, Result
from bot.devtools.bench.observe import Recorder
from bot.devtools.bench.slow_clients import SlowClients
from bot.devtools.bench.workload import Interaction, Workload
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.journal import Recorded

BROKER_PATH = "/api/v2/joseencrypt"
ANSWER_TIMEOUT = 180.0
SLOW_SETTLE = 1.0  # seconds for the slow clients' requests to reach the server's threads
MESSAGE_TRIPS = ("GET message", "POST message")  # fetch the mention, post the form
SUBMIT_TRIPS = ("GET action", "POST broker", "POST message")  # fetch, create, post the links


@dataclass(frozen=True)
class Stage:
    """What every phase works with."""

    box: Sandbox
    recorder: Recorder
    driver: Driver
    workload: Workload
    url: str
    latency: float
    concurrency: int

    @property
    def quiet_period(self) -> float:
        """Long enough without a request to be sure the bot has finished its calls."""
        return max(0.3, 4 * self.latency)


@dataclass(frozen=True)
class Outcome:
    """What one batch of interactions took, and the upstream calls made meanwhile."""

    results: list[Result]
    answered: list[float]
    calls: list[tuple[float, Recorded]]

    @property
    def requests(self) -> list[Recorded]:
        """The upstream calls without their stamps."""
        return [recorded for _, recorded in self.calls]

    @property
    def acks(self) -> list[float]:
        """Acknowledgement time of each delivery, seconds."""
        return [result.ack_seconds for result in self.results]

    @property
    def end_to_end(self) -> list[float]:
        """From each delivery leaving the driver to the bot's answer being recorded, seconds."""
        return [done - result.sent for result, done in zip(self.results, self.answered,
                                                            strict=True)]

    @property
    def makespan(self) -> float:
        """From the first delivery leaving to the last answer, seconds."""
        return max(self.answered) - min(result.sent for result in self.results)


def set_latency(box: Sandbox, latency: float, broker: float | None = None) -> None:
    """Every upstream call answers after ``latency`` seconds; the broker after ``broker``."""
    box.clear_faults()
    if broker is not None:
        box.fail("POST", BROKER_PATH, status=None, latency=broker)  # earlier faults win
    if latency > 0:
        box.fail("*", "*", status=None, latency=latency)


def run(stage: Stage, interactions: Sequence[Interaction], concurrency: int,
        *, settle: bool = True) -> Outcome:
    """Send the deliveries at ``concurrency``, wait for every answer (and the calls after it)."""
    mark = stage.recorder.mark()
    results = stage.driver.fire(stage.url, [i.shot for i in interactions], concurrency)
    refused = Counter(result.status for result in results if result.status != 200)
    if refused:
        raise RuntimeError(f"the bot refused deliveries: {dict(refused)}")
    done = stage.recorder.wait_posts({i.room_id: i.post for i in interactions}, ANSWER_TIMEOUT)
    if settle:
        stage.recorder.quiet(stage.quiet_period)
    answered = [done[i.room_id] for i in interactions]
    return Outcome(results, answered, stage.recorder.requests_since(mark))


def in_waves(stage: Stage, interactions: Sequence[Interaction], size: int) -> Outcome:
    """At most ``size`` interactions in flight, each wave answered before the next is sent."""
    outcomes = [run(stage, interactions[at:at + size], size, settle=False)
                for at in range(0, len(interactions), size)]
    stage.recorder.quiet(stage.quiet_period)
    return Outcome([r for o in outcomes for r in o.results],
                   [a for o in outcomes for a in o.answered],
                   [c for o in outcomes for c in o.calls])


def flood(stage: Stage, count: int) -> tuple[Outcome, Outcome]:
    """``count`` mentions sent at once (``concurrency`` in flight), then a submit of each form."""
    mentions = stage.workload.mentions(count)
    forms = run(stage, mentions, stage.concurrency)
    links = run(stage, stage.workload.submits(mentions), stage.concurrency)
    require_broker_calls(links.requests, count)
    return forms, links


def waves(stage: Stage, count: int, size: int) -> tuple[Outcome, Outcome]:
    """Mentions, then their submits, ``size`` at a time, each wave answered before the next."""
    mentions = stage.workload.mentions(count)
    forms = in_waves(stage, mentions, size)
    links = in_waves(stage, stage.workload.submits(mentions), size)
    require_broker_calls(links.requests, count)
    return forms, links


def slow_broker_acks(stage: Stage, count: int, broker: float) -> list[float]:
    """Acknowledgement times of submits while every broker call takes ``broker`` seconds."""
    mentions = stage.workload.mentions(count)
    run(stage, mentions, stage.concurrency)
    submits = stage.workload.submits(mentions)
    set_latency(stage.box, stage.latency, broker)
    mark = stage.recorder.mark()
    results = stage.driver.fire(stage.url, [i.shot for i in submits], stage.concurrency)
    set_latency(stage.box, stage.latency)  # the backlog then drains at the normal pace
    stage.recorder.wait_posts({i.room_id: i.post for i in submits}, ANSWER_TIMEOUT)
    stage.recorder.quiet(stage.quiet_period)
    require_broker_calls([r for _, r in stage.recorder.requests_since(mark)], count)
    return [result.ack_seconds for result in results]


@dataclass(frozen=True)
class SlowClientsOutcome:
    """Acknowledgement times of deliveries alone and beside slow clients, and what the server
    did to those clients."""

    alone: list[float]
    beside: list[float]
    answered_beside: int  # acknowledged while the slow clients were still connected
    connections: int
    cut: int


def beside_slow_clients(stage: Stage, count: int, slow: int) -> SlowClientsOutcome:
    """``count`` mentions alone, then ``count`` more while ``slow`` clients trickle a webhook
    body a byte a second to the same endpoint (each on its own connection)."""
    first, second = stage.workload.mentions(count), stage.workload.mentions(count)
    alone = run(stage, first, stage.concurrency)
    with SlowClients(stage.url, slow) as clients:
        time.sleep(SLOW_SETTLE)
        beside = run(stage, second, stage.concurrency, settle=False)
    stage.recorder.quiet(stage.quiet_period)
    answered = sum(1 for result in beside.results if result.acked < clients.ended)
    return SlowClientsOutcome(alone.acks, beside.acks, answered, clients.connections,
                              clients.cut)


def burst(stage: Stage, count: int, broker: float) -> float:
    """Seconds from the first of ``count`` simultaneous submits to the last links posted."""
    mentions = stage.workload.mentions(count)
    run(stage, mentions, stage.concurrency)
    submits = stage.workload.submits(mentions)
    set_latency(stage.box, stage.latency, broker)
    try:
        outcome = run(stage, submits, count)
    finally:
        set_latency(stage.box, stage.latency)
    require_broker_calls(outcome.requests, count)
    return outcome.makespan


def after_idle(stage: Stage, idle: float) -> float:
    """End-to-end seconds of one mention sent after the bot has had nothing to do for ``idle``."""
    mention = stage.workload.mentions(1)
    stage.recorder.quiet(stage.quiet_period)
    time.sleep(idle)
    return run(stage, mention, 1).end_to_end[0]


def request_kind(recorded: Recorded) -> str:
    """Name an upstream call the way the report counts it."""
    method, path = recorded.method, recorded.path
    if path == BROKER_PATH:
        return f"{method} broker"
    if path == "/v1/people/me":
        return f"{method} people/me"
    if path.startswith("/v1/people/"):
        return f"{method} person"
    if path.startswith("/v1/attachment/actions/"):
        return f"{method} action"
    if path == "/v1/messages":
        return f"{method} message"
    if path.startswith("/v1/messages/"):
        return "DELETE form" if method == "DELETE" else f"{method} message"
    return f"{method} {path}"


def per_interaction(requests: Sequence[Recorded], count: int,
                    trips: Sequence[str]) -> dict[str, float]:
    """Upstream calls per interaction: in all, the necessary ones, and each extra kind."""
    kinds = Counter(request_kind(recorded) for recorded in requests)
    figures = {"total": sum(kinds.values()) / count,
               "necessary": sum(kinds[kind] for kind in trips) / count,
               "minimum": float(len(trips))}
    for kind in ("GET people/me", "GET person", "DELETE form"):
        figures[kind] = kinds[kind] / count
    others = sum(n for kind, n in kinds.items()
                 if kind not in (*trips, "GET people/me", "GET person", "DELETE form"))
    figures["other"] = others / count
    return figures


def require_broker_calls(requests: Sequence[Recorded], expected: int) -> None:
    """Refuse to report on submits that did not each create exactly one meeting."""
    calls = sum(1 for recorded in requests if request_kind(recorded) == "POST broker")
    if calls != expected:
        raise RuntimeError(f"{expected} submits made {calls} broker calls: the bot did not "
                           "create every meeting once, so the figures would mean nothing")


def warm_up(stage: Stage, people: int) -> list[Recorded]:
    """Let every process fetch /people/me and each person before anything is timed."""
    mentions = stage.workload.mentions(4 * people)
    forms = run(stage, mentions, stage.concurrency)
    links = run(stage, stage.workload.submits(mentions[:people]), stage.concurrency)
    return forms.requests + links.requests
