"""The benchmark's knobs, read from its command line: a full run's defaults, or ``--quick``'s.

The command line leaves every count unset (None) unless it is given, so that ``--quick`` can
choose smaller ones while an option given explicitly still wins over either.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from bot.settings import Settings
from bot.web.server import WORKER_CLASS

ENGINES = ("sqlite", "redis")
STORE_CHOICES = (*ENGINES, "both")


class RedisMissing(Exception):
    """``--store redis`` on a machine without redis-server: nothing to measure."""


@dataclass(frozen=True)
class Options:
    """The benchmark's knobs in the command line's units; the defaults are a full run's."""

    runs: int = 3
    latency_ms: float = 50.0
    concurrency: int = 8
    events: int = 200
    slow_broker_ms: float = 2000.0
    burst: int = 50
    burst_latency_ms: float = 500.0
    idle_s: float = 60.0
    workers: int = 2
    threads: int = 8
    worker_threads: int = Settings.worker_threads
    more_worker_threads: int = 128
    people: int = 10
    slow_clients: int = 20
    engines: tuple[str, ...] = ENGINES
    quick: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        """A full run (or ``--quick``'s), with every option the command line gave instead."""
        given = {name: value for name in KNOBS if (value := getattr(args, name)) is not None}
        return replace(QUICK_RUN if args.quick else FULL_RUN, engines=engines(args.store),
                       **given)

    @property
    def latency(self) -> float:
        """Seconds added to every upstream call."""
        return self.latency_ms / 1000

    @property
    def slow_broker(self) -> float:
        """Seconds the broker takes while acknowledgements are measured."""
        return self.slow_broker_ms / 1000

    @property
    def burst_latency(self) -> float:
        """Seconds the broker takes during the burst."""
        return self.burst_latency_ms / 1000

    def describe(self) -> dict[str, Any]:
        """The settings as the report and the JSON show them (milliseconds, counts)."""
        return {**asdict(self), "worker_class": WORKER_CLASS}


FULL_RUN = Options()
# Every phase and row of a full run, on both engines, in well under a minute on two cores: each
# bot launch costs seconds whatever the counts, so the counts are what is cut.
QUICK_RUN = replace(FULL_RUN, runs=1, events=16, idle_s=1.0, burst=16, people=3,
                    slow_clients=8, quick=True)
KNOBS = tuple(field.name for field in fields(Options) if field.name not in ("engines", "quick"))


def engines(store: str) -> tuple[str, ...]:
    """The engines ``--store`` names that can run here: without redis-server, ``both`` falls back
    to SQLite with a warning and ``redis`` is refused (:class:`RedisMissing`)."""
    wanted = ENGINES if store == "both" else (store,)
    if "redis" not in wanted or shutil.which("redis-server") is not None:
        return wanted
    if store == "redis":
        raise RedisMissing("--store redis: redis-server is not installed "
                           "(apt-get install redis-server)")
    print("warning: --store both: redis-server is not installed, so the bot runs on SQLite only",
          file=sys.stderr)
    return ("sqlite",)
