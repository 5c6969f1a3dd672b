"""``python -m bot bench`` end to end with tiny numbers: every row printed for every engine, valid
JSON written.

No timing is asserted: on a shared machine only the shape of the report can be relied on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.devtools.bench import options
from bot.devtools.bench.processes import job_processes, labelled, peak_memory
from bot.devtools.bench.report import ENGINE_NAMES
from bot.settings import Settings

# A process tree shaped as ``serve``'s may be: each process runs this with its role as argv.
TREE = """
import subprocess, sys, time

def spawn(*role):
    subprocess.Popen([sys.executable, __file__, *role])

if sys.argv[1] == "supervisor":
    spawn("-m", "gunicorn")
    spawn("-m", "bot", "work")
elif sys.argv[1:3] == ["-m", "gunicorn"]:
    spawn("web")
    spawn("web")
time.sleep(60)
"""

ROWS = (
    "Webhook acknowledgement (ms)",
    "floor: bare gunicorn + Flask",
    "ratio to floor",
    "End to end (ms)",
    "Where the time goes, one at a time (ms)",
    "Upstream requests per interaction",
    "4 simultaneous submits, broker +100 ms",
    "Deliveries beside 3 slow clients (ms)",
    "ratio to alone",
    "First mention after 1 s idle (ms)",
    "Sustained interactions per second",
    "Peak resident memory, VmHWM (MiB)",
    "gunicorn master",
    "web 1",
    "web 2",
    "total",
)
ENGINE_ROWS = (  # each once per engine
    "bot on {engine}, web processes alone",
    "bot on {engine}, broker +20 ms",
    "bot on {engine}, broker +300 ms",
    "message -> form, one at a time ({engine})",
    "message -> form, 2 in flight ({engine})",
    "submit -> links, one at a time ({engine})",
    "submit -> links, 2 in flight ({engine})",
    "message: acknowledge ({engine})",
    "message: -> GET message ({engine})",
    "message: -> POST message ({engine})",
    "submit: acknowledge ({engine})",
    "submit: -> GET action ({engine})",
    "submit: -> POST broker ({engine})",
    "submit: -> POST message ({engine})",
    "message -> form ({engine})",
    "submit -> links ({engine})",
    "whole lifetime of the bot on {engine}: GET /people/me",
    "bot on {engine}, WORKER_THREADS 2",
    "bot on {engine}, WORKER_THREADS 4",
    "bot on {engine}, alone",
    "bot on {engine}, 3 slow clients",
    "bot on {engine}, flood answered",
)
SECTIONS = ("ack_ms", "end_to_end_ms", "steps_ms", "emulator_ms", "requests_per_interaction",
            "lookups", "burst_ms", "idle", "throughput_per_s", "memory_mib", "slow_clients")


def _bench(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "bench", *options],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_bench_prints_every_row_for_every_engine_and_writes_json(tmp_path: Path) -> None:
    engines = ["sqlite", "redis"] if shutil.which("redis-server") else ["sqlite"]
    target = tmp_path / "bench.json"
    done = _bench(
        "--quick", "--store", "both" if len(engines) == 2 else "sqlite", "--events", "6",
        "--people", "2", "--concurrency", "2", "--latency", "20", "--slow-broker", "300",
        "--burst", "4", "--burst-latency", "100", "--idle", "1", "--threads", "4",
        "--worker-threads", "2", "--more-worker-threads", "4", "--slow-clients", "3",
        "--json", str(target))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    names = [ENGINE_NAMES[engine] for engine in engines]
    assert f"quick; the bot on {' and '.join(names)}" in lines[0]
    wanted = [*ROWS, *(row.format(engine=name) for row in ENGINE_ROWS for name in names)]
    missing = [label for label in wanted if not any(label in line for line in lines)]
    assert not missing, f"rows missing from the table: {missing}\n{done.stdout}"
    memory_header = next(line for line in lines if line.startswith("Peak resident memory"))
    assert memory_header.split()[-len(names) - 1:] == ["floor", *names]
    assert max(len(line) for line in lines) <= 110, done.stdout

    document = json.loads(target.read_text())
    assert document["settings"]["runs"] == 1 and document["settings"]["quick"] is True
    assert len(document["runs"]) == 1
    median = document["median"]
    assert set(median) == {"floor", *engines}
    assert set(median["floor"]) == {"ack_ms", "memory_mib"}
    for engine in engines:
        assert set(SECTIONS) <= set(median[engine])
        memory = median[engine]["memory_mib"]
        assert {"gunicorn master", "web 1", "web 2"} <= set(memory["per_process"])
        assert memory["total"] == pytest.approx(sum(memory["per_process"].values()))


def test_bench_refuses_a_bad_count() -> None:
    done = _bench("--runs", "0")
    assert done.returncode == 2
    assert "--runs" in done.stderr and "at least 1" in done.stderr


def test_bench_refuses_an_unknown_store() -> None:
    done = _bench("--store", "nosuch")
    assert done.returncode == 2
    assert "--store" in done.stderr and "nosuch" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_bench_help_gives_the_real_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """--worker-threads defaults to the bot's WORKER_THREADS, and the help says so, as it gives a
    full run's counts although they default to None (so that --quick can choose its own)."""
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"as deployed (default {Settings.worker_threads})" in text
    assert "second burst (default 128)" in text
    assert "mentions and submits per flood (default 200)" in text
    assert "before the last event (default 60)" in text
    assert "(default both)" in text


def test_without_redis_server_both_falls_back_to_sqlite_and_redis_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(options.shutil, "which", lambda name: None)
    assert options.engines("sqlite") == ("sqlite",)
    assert options.engines("both") == ("sqlite",)
    warning = capsys.readouterr().err
    assert warning.startswith("warning: --store both:") and warning.count("\n") == 1
    with pytest.raises(options.RedisMissing, match=r"^--store redis: redis-server is not"):
        options.engines("redis")


@pytest.mark.parametrize(("root", "labels", "running_jobs"), [
    (["supervisor"], ["supervisor", "gunicorn master", "web 1", "web 2", "worker 1"], 1),
    (["-m", "gunicorn"], ["gunicorn master", "web 1", "web 2"], 2),  # gunicorn alone
])
def test_memory_names_every_process_of_the_tree(tmp_path: Path, root: list[str],
                                                labels: list[str], running_jobs: int) -> None:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    tree = subprocess.Popen([sys.executable, str(script), *root], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while len(labelled(tree.pid)) < len(labels) and time.monotonic() < deadline:
            time.sleep(0.05)  # the children are still starting
        assert [label for label, _ in labelled(tree.pid)] == labels
        memory = peak_memory(tree.pid)
        assert list(memory["per_process"]) == labels
        assert all(mib > 0 for mib in memory["per_process"].values())
        assert memory["total"] == pytest.approx(sum(memory["per_process"].values()))
        assert job_processes(memory["per_process"]) == running_jobs
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()
