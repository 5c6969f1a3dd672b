"""The raw measurements of one run (the floor, the bot on an engine) turned into the figures the
report and the JSON show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.devtools.bench.budget import steps_ms
from bot.devtools.bench.options import Options
from bot.devtools.bench.phases import (
    MESSAGE_TRIPS,
    SUBMIT_TRIPS,
    Outcome,
    SlowClientsOutcome,
    per_interaction,
    request_kind,
)
from bot.devtools.bench.processes import job_processes
from bot.devtools.bench.slow_clients import HOLD_SECONDS, TRICKLE_SECONDS
from bot.devtools.bench.stats import spread_ms
from bot.devtools.sandbox.journal import Recorded

TRIPS = {"message": MESSAGE_TRIPS, "submit": SUBMIT_TRIPS}


@dataclass(frozen=True)
class Measured:
    """What the phases measured on the bot as deployed (outcome pairs: mentions, submits)."""

    emulator: dict[str, float]
    flooded: tuple[Outcome, Outcome]
    slow_acks: list[float]
    one_by_one: tuple[Outcome, Outcome]
    in_flight: tuple[Outcome, Outcome]
    burst: float
    idle: float
    lifetime: list[Recorded]
    slow_clients: SlowClientsOutcome


@dataclass(frozen=True)
class Floor:
    """The bare gunicorn + Flask endpoint's acknowledgement times and memory."""

    acks: list[float]
    memory: dict[str, Any]

    def figures(self) -> dict[str, Any]:
        """The floor's figures: what each engine's are compared with."""
        return {"ack_ms": spread_ms(self.acks), "memory_mib": self.memory}


@dataclass(frozen=True)
class Extra:
    """The burst with more worker threads, the deployed bot's memory, and the acknowledgements
    of its web processes with no worker process running (what the 200 costs by itself)."""

    more_threads_burst: float
    memory: dict[str, Any]
    web_alone_acks: list[float]


def figures(options: Options, measured: Measured, floor_acks_ms: dict[str, float],
            extra: Extra) -> dict[str, Any]:
    """Every figure of the bot on one engine in one run, in milliseconds, counts and MiB;
    acknowledgements also as ratios to the floor's (``floor_acks_ms``, percentiles)."""
    floors = {kind: len(trips) * options.latency_ms for kind, trips in TRIPS.items()}
    work = {kind: sum(measured.emulator[k] for k in trips) for kind, trips in TRIPS.items()}
    e2e = {}
    for index, kind in enumerate(TRIPS):
        e2e[f"{kind}_one_at_a_time"] = _end_to_end(measured.one_by_one[index].end_to_end,
                                                   floors[kind], work[kind])
        e2e[kind] = _end_to_end(measured.in_flight[index].end_to_end, floors[kind], work[kind])
    mentions, submits = measured.flooded
    return {
        "ack_ms": _acks(floor_acks_ms, {"web_alone": extra.web_alone_acks,
                                        "bot": mentions.acks + submits.acks,
                                        "bot_slow_broker": measured.slow_acks}),
        "end_to_end_ms": e2e,
        "steps_ms": {kind: steps_ms(measured.one_by_one[index], trips, options.latency)
                     for index, (kind, trips) in enumerate(TRIPS.items())},
        "emulator_ms": measured.emulator,
        "requests_per_interaction": {
            kind: per_interaction(outcome.requests, len(outcome.results), TRIPS[kind])
            for kind, outcome in zip(TRIPS, measured.flooded, strict=True)
        },
        "lookups": {
            "people_me": sum(1 for r in measured.lifetime if request_kind(r) == "GET people/me"),
            "person": sum(1 for r in measured.lifetime if request_kind(r) == "GET person"),
            "job_processes": job_processes(extra.memory["per_process"]),
        },
        "burst_ms": {
            "floor": 2 * options.latency_ms + options.burst_latency_ms,
            "as_deployed": measured.burst * 1000,
            "more_worker_threads": extra.more_threads_burst * 1000,
        },
        "idle": {"end_to_end_ms": measured.idle * 1000,
                 "overhead_ms": measured.idle * 1000 - floors["message"] - work["message"]},
        "throughput_per_s": {"messages": len(mentions.results) / mentions.makespan,
                             "submits": len(submits.results) / submits.makespan},
        "memory_mib": extra.memory,
        "slow_clients": _slow_clients(measured.slow_clients),
    }


def _slow_clients(outcome: SlowClientsOutcome) -> dict[str, Any]:
    """Delivery acknowledgements alone and beside the slow clients, and what became of them."""
    alone, beside = spread_ms(outcome.alone), spread_ms(outcome.beside)
    return {"alone_ms": alone, "beside_ms": beside,
            "ratio": {p: beside[p] / alone[p] for p in alone},
            "deliveries": len(outcome.beside), "answered_beside": outcome.answered_beside,
            "connections": outcome.connections,
            "cut": outcome.cut, "hold_s": HOLD_SECONDS, "trickle_s": TRICKLE_SECONDS}


def _acks(floor: dict[str, float], acks: dict[str, list[float]]) -> dict[str, Any]:
    """Acknowledgement percentiles of each measurement of the bot, and their ratios to the
    floor's."""
    figures: dict[str, Any] = {}
    for name, seconds in acks.items():
        figures[name] = spread_ms(seconds)
        figures[f"{name}_ratio"] = {p: figures[name][p] / floor[p] for p in floor}
    return figures


def _end_to_end(seconds: list[float], floor: float, emulator: float) -> dict[str, float]:
    """End-to-end percentiles beside the floor (round trips x latency) and the emulator's own
    time; what is left is the bot's overhead."""
    spread = spread_ms(seconds, (50, 99))
    return {**spread, "floor": floor, "emulator": emulator,
            "overhead_p50": spread["p50"] - floor - emulator,
            "overhead_p99": spread["p99"] - floor - emulator}
