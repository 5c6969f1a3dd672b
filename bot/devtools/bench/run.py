"""``python -m bot bench``: run the benchmark ``--runs`` times, print the medians, keep the JSON.

Each run: the floor (a bare Flask app under the bot's gunicorn command line) and then the bot
(``python -m bot serve``, as the Procfile runs it) against a fresh sandbox whose every answer
comes ``--latency`` late, with webhooks sent from the driver process.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.devtools.as_deployed import launched_bot, sandbox_env
from bot.devtools.bench import phases
from bot.devtools.bench.budget import emulator_ms
from bot.devtools.bench.driver import Driver
from bot.devtools.bench.figures import Extra, Floor, Measured, figures
from bot.devtools.bench.observe import Recorder
from bot.devtools.bench.options import Options
from bot.devtools.bench.phases import MESSAGE_TRIPS, SUBMIT_TRIPS, Stage
from bot.devtools.bench.processes import launched_floor, peak_memory
from bot.devtools.bench.report import table
from bot.devtools.bench.stats import median_of
from bot.devtools.bench.workload import Workload
from bot.devtools.sandbox import Sandbox

NO_MEETING_LIMIT = "1000000"  # the per-person limit would answer instead of the broker



def main(args: argparse.Namespace) -> int:
    """Run the benchmark and report; exit 0, or 1 when the bot misbehaved."""
    options = Options.from_args(args)
    folder = Path(tempfile.mkdtemp(prefix="icbot-bench-"))
    runs = []
    with Driver() as driver:
        for number in range(1, options.runs + 1):
            print(f"run {number} of {options.runs} (logs in {folder})", file=sys.stderr)
            try:
                runs.append(one_run(options, number, driver, folder))
            except (RuntimeError, TimeoutError) as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
    summary = median_of(runs)
    print(table(summary, options.describe()))
    if args.json:
        document = {"settings": options.describe(), "median": summary, "runs": runs}
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    return 0


def one_run(options: Options, number: int, driver: Driver, folder: Path) -> dict[str, Any]:
    """The floor, the bot as deployed, and the bot with more worker threads, on one sandbox."""
    secret = secrets.token_hex(16)
    with Sandbox(seed=number) as box, Recorder(box) as recorder:
        workload = Workload(box, secret, options.people)
        phases.set_latency(box, options.latency)
        floor_shots = [i.shot for i in workload.mentions(2 * options.events)]
        with launched_floor(options.workers, options.threads, folder) as floor:
            driver.fire(floor.webhook_url, floor_shots, options.concurrency)  # warm up, as the bot
            floor_acks = [r.ack_seconds for r in driver.fire(
                floor.webhook_url, floor_shots, options.concurrency)]
            floor_memory = peak_memory(floor)
        with _bot(box, recorder, driver, workload, options, secret, folder,
                  options.worker_threads) as (stage, bot):
            measured = _measure(stage, options)
            memory = peak_memory(bot)
        with _bot(box, recorder, driver, workload, options, secret, folder,
                  options.more_worker_threads) as (stage, _):
            phases.warm_up(stage, options.people)
            more_threads = phases.burst(stage, options.burst, options.burst_latency)
    return figures(options, measured, Floor(floor_acks, floor_memory), Extra(more_threads, memory))


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
    idle = phases.after_idle(stage, options.idle)
    lifetime = [recorded for _, recorded in stage.recorder.requests_since(start)]
    return Measured(emulator, flooded, slow_acks, one_by_one, in_flight, burst, idle, lifetime,
                    slow_clients)


@contextmanager
def _bot(box: Sandbox, recorder: Recorder, driver: Driver, workload: Workload,
         options: Options, secret: str, folder: Path,
         worker_threads: int) -> Iterator[tuple[Stage, Any]]:
    """The bot launched as the Procfile does, on a store of its own, and its stage."""
    store = f"sqlite:///{folder}/bot-{box.seed}-{worker_threads}.sqlite3"
    env = sandbox_env(box, store, secret, WORKER_THREADS=str(worker_threads),
                      MEETINGS_PER_PERSON=NO_MEETING_LIMIT)
    with launched_bot(env, workers=options.workers, threads=options.threads,
                      log_dir=folder) as bot:
        yield Stage(box, recorder, driver, workload, bot.webhook_url, options.latency,
                    options.concurrency), bot
