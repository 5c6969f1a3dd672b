"""``python -m bot bench``: run the benchmark ``--runs`` times, print the medians, keep the JSON.

Each run: the floor (a bare Flask app under the bot's gunicorn command line), then the bot
(``python -m bot serve``, as the Procfile runs it) on each store engine of ``--store``, every one
against a fresh sandbox whose every answer comes ``--latency`` late, with webhooks sent from the
driver process.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.devtools.as_deployed import LaunchedBot, launched_bot, sandbox_env
from bot.devtools.bench import phases
from bot.devtools.bench.budget import emulator_ms
from bot.devtools.bench.driver import Driver
from bot.devtools.bench.figures import Extra, Floor, Measured, figures
from bot.devtools.bench.observe import Recorder
from bot.devtools.bench.options import Options, RedisMissing
from bot.devtools.bench.phases import MESSAGE_TRIPS, SUBMIT_TRIPS, Stage
from bot.devtools.bench.processes import launched_floor, peak_memory
from bot.devtools.bench.report import table
from bot.devtools.bench.stats import median_of
from bot.devtools.bench.stores import Stores, stores
from bot.devtools.bench.workload import Workload
from bot.devtools.sandbox import Sandbox

NO_MEETING_LIMIT = "1000000"  # the per-person limit would answer instead of the broker


@dataclass(frozen=True)
class Rig:
    """What every run shares: the knobs, the driver process, the stores and the log folder."""

    options: Options
    driver: Driver
    stores: Stores
    folder: Path


@dataclass(frozen=True)
class Scene:
    """A fresh sandbox playing Webex, the recorder stamping its requests, its people and spaces,
    and the webhook secret they are signed with."""

    box: Sandbox
    recorder: Recorder
    workload: Workload
    secret: str


def main(args: argparse.Namespace) -> int:
    """Run the benchmark and report; exit 0, 1 when the bot misbehaved, 2 when it cannot run."""
    try:
        options = Options.from_args(args)
    except RedisMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="icbot-bench-"))
    try:
        runs = every_run(options, folder)
    except (RuntimeError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = median_of(runs)
    print(table(summary, options.describe()))
    if args.json:
        document = {"settings": options.describe(), "median": summary, "runs": runs}
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    return 0


def every_run(options: Options, folder: Path) -> list[dict[str, Any]]:
    """The figures of each run, all sharing one driver process and one redis-server."""
    with Driver() as driver, stores(folder, options.engines) as where:
        rig = Rig(options, driver, where, folder)
        runs = []
        for number in range(1, options.runs + 1):
            print(f"run {number} of {options.runs} (logs in {folder})", file=sys.stderr)
            runs.append(one_run(rig, number))
        return runs


def one_run(rig: Rig, number: int) -> dict[str, Any]:
    """The floor, then the bot on each engine, each on a sandbox of its own: no engine inherits
    another's spaces and journal."""
    with _scene(rig.options, number) as scene:
        floor = _floor(rig, scene).figures()
    run = {"floor": floor}
    for engine in rig.options.engines:
        with _scene(rig.options, number) as scene:
            run[engine] = _on_engine(rig, scene, engine, floor["ack_ms"])
    return run


@contextmanager
def _scene(options: Options, seed: int) -> Iterator[Scene]:
    """A fresh sandbox, answering ``--latency`` late, with the benchmark's people on it."""
    secret = secrets.token_hex(16)
    with Sandbox(seed=seed) as box, Recorder(box) as recorder:
        phases.set_latency(box, options.latency)
        yield Scene(box, recorder, Workload(box, secret, options.people), secret)


def _floor(rig: Rig, scene: Scene) -> Floor:
    """The bare endpoint's acknowledgements of the mentions a flood sends, and its memory."""
    options = rig.options
    with launched_floor(options.workers, options.threads, rig.folder) as floor:
        return Floor(_acks(rig, scene, floor.webhook_url), peak_memory(floor.process.pid))


def _on_engine(rig: Rig, scene: Scene, engine: str,
               floor_acks_ms: dict[str, float]) -> dict[str, Any]:
    """The bot as deployed on ``engine``: every phase and its memory; then the burst again with
    more worker threads."""
    options = rig.options
    with _bot(rig, scene, engine, options.worker_threads, WORKER_PROCESSES="0") as (stage, _):
        web_alone = _acks(rig, scene, stage.url)
    with _bot(rig, scene, engine, options.worker_threads) as (stage, bot):
        measured = _measure(stage, options)
        memory = peak_memory(bot.process.pid)  # while it runs: its processes go when it stops
    with _bot(rig, scene, engine, options.more_worker_threads) as (stage, _):
        phases.warm_up(stage, options.people)
        more_threads = phases.burst(stage, options.burst, options.burst_latency)
    return figures(options, measured, floor_acks_ms, Extra(more_threads, memory, web_alone))


def _acks(rig: Rig, scene: Scene, url: str) -> list[float]:
    """Acknowledgements of a flood's worth of new mentions, after as many to warm up."""
    options = rig.options
    shots = [i.shot for i in scene.workload.mentions(2 * options.events)]
    rig.driver.fire(url, shots[:options.events], options.concurrency)
    return [r.ack_seconds for r in rig.driver.fire(url, shots[options.events:],
                                                   options.concurrency)]


def _measure(stage: Stage, options: Options) -> Measured:
    """Every phase on the bot as deployed, in an order that leaves each one a quiet bot."""
    start = stage.recorder.mark()
    warm_calls = phases.warm_up(stage, options.people)
    emulator = emulator_ms(stage.box, warm_calls, [*MESSAGE_TRIPS, *SUBMIT_TRIPS],
                           options.latency)
    flooded = phases.flood(stage, options.events)
    slow_acks = phases.slow_broker_acks(stage, options.events // 2, options.slow_broker)
    one_by_one = phases.waves(stage, max(1, options.events // 5), 1)
    in_flight = phases.waves(stage, options.events // 2, options.concurrency)
    burst = phases.burst(stage, options.burst, options.burst_latency)
    slow_clients = phases.beside_slow_clients(stage, max(2, options.events // 4),
                                              options.slow_clients)
    idle = phases.after_idle(stage, options.idle_s)
    lifetime = [recorded for _, recorded in stage.recorder.requests_since(start)]
    return Measured(emulator, flooded, slow_acks, one_by_one, in_flight, burst, idle, lifetime,
                    slow_clients)


@contextmanager
def _bot(rig: Rig, scene: Scene, engine: str, worker_threads: int,
         **extra: str) -> Iterator[tuple[Stage, LaunchedBot]]:
    """The bot launched as the Procfile does, on a store of its own, and its stage."""
    options = rig.options
    env = sandbox_env(scene.box, rig.stores.fresh(engine), scene.secret,
                      WORKER_THREADS=str(worker_threads), MEETINGS_PER_PERSON=NO_MEETING_LIMIT,
                      **extra)
    with launched_bot(env, workers=options.workers, threads=options.threads,
                      log_dir=rig.folder) as bot:
        yield Stage(scene.box, scene.recorder, rig.driver, scene.workload, bot.webhook_url,
                    options.latency, options.concurrency), bot
