"""``python -m bot bench`` end to end with tiny numbers: every row printed, valid JSON written.

No timing is asserted: on a shared machine only the shape of the report can be relied on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings

ROWS = (
    "Webhook acknowledgement (ms)",
    "floor: bare gunicorn + Flask",
    "bot, broker +20 ms",
    "bot, broker +300 ms",
    "ratio to floor",
    "End to end (ms)",
    "message -> form, one at a time",
    "message -> form, 2 in flight",
    "submit -> links, one at a time",
    "submit -> links, 2 in flight",
    "Where the time goes, one at a time (ms)",
    "message: acknowledge",
    "message: -> GET message",
    "message: -> POST message",
    "submit: -> GET action",
    "submit: -> POST broker",
    "submit: -> POST message",
    "Upstream requests per interaction",
    "message -> form",
    "submit -> links",
    "GET /people/me",
    "4 simultaneous submits, broker +100 ms",
    "WORKER_THREADS 2 (4 threads)",
    "WORKER_THREADS 4 (8 threads)",
    "First mention after 1 s idle (ms)",
    "Sustained interactions per second",
    "Peak resident memory, VmHWM (MiB)",
)
SECTIONS = ("ack_ms", "end_to_end_ms", "steps_ms", "emulator_ms", "requests_per_interaction",
            "lookups", "burst_ms", "idle", "throughput_per_s", "memory_mib")


@pytest.mark.slow
def test_bench_prints_every_row_and_writes_json(tmp_path: Path) -> None:
    target = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "bot", "bench", "--runs", "1", "--events", "6", "--people", "2",
        "--concurrency", "2", "--latency", "20", "--slow-broker", "300", "--burst", "4",
        "--burst-latency", "100", "--idle", "1", "--threads", "4", "--worker-threads", "2",
        "--more-worker-threads", "4", "--json", str(target),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    missing = [label for label in ROWS if label not in done.stdout]
    assert not missing, f"rows missing from the table: {missing}\n{done.stdout}"
    document = json.loads(target.read_text())
    assert document["settings"]["runs"] == 1
    assert set(SECTIONS) <= set(document["median"])
    assert len(document["runs"]) == 1
    bot_memory = document["median"]["memory_mib"]["bot"]
    assert bot_memory["master"] > 0 and len(bot_memory["workers"]) == 2


def test_bench_refuses_a_bad_count() -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "bench", "--runs", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--runs" in done.stderr and "at least 1" in done.stderr


def test_bench_help_gives_the_real_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """--worker-threads defaults to the bot's WORKER_THREADS, and the help says so."""
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"as deployed (default {Settings.worker_threads})" in text
    assert "second burst (default 64)" in text
