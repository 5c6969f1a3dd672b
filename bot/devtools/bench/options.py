"""The benchmark's knobs, read from its command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from bot.web.server import WORKER_CLASS


@dataclass(frozen=True)
class Options:
    """The benchmark's knobs, in seconds where the command line says milliseconds."""

    runs: int
    latency: float
    concurrency: int
    events: int
    slow_broker: float
    burst: int
    burst_latency: float
    idle: float
    workers: int
    threads: int
    worker_threads: int
    more_worker_threads: int
    people: int
    slow_clients: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        """Read the parsed command line."""
        return cls(
            runs=args.runs, latency=args.latency / 1000, concurrency=args.concurrency,
            events=args.events, slow_broker=args.slow_broker / 1000, burst=args.burst,
            burst_latency=args.burst_latency / 1000, idle=args.idle, workers=args.workers,
            threads=args.threads, worker_threads=args.worker_threads,
            more_worker_threads=args.more_worker_threads, people=args.people,
            slow_clients=args.slow_clients,
        )

    def describe(self) -> dict[str, Any]:
        """The settings as the report and the JSON show them (milliseconds, counts)."""
        return {
            "runs": self.runs, "latency_ms": self.latency * 1000,
            "concurrency": self.concurrency, "events": self.events,
            "slow_broker_ms": self.slow_broker * 1000, "burst": self.burst,
            "burst_broker_ms": self.burst_latency * 1000, "idle_s": self.idle,
            "web_concurrency": self.workers, "web_threads": self.threads,
            "worker_threads": self.worker_threads,
            "more_worker_threads": self.more_worker_threads, "people": self.people,
            "slow_clients": self.slow_clients, "worker_class": WORKER_CLASS,
        }

