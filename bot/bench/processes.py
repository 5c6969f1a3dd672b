"""The floor served exactly as ``serve`` serves the bot, and the peak memory of such servers."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bot.cli import gunicorn_command
from bot.launch import LaunchedBot, free_port

FLOOR_APP = "bot.bench.floor_app:app"


@contextlib.contextmanager
def launched_floor(workers: int, threads: int, log_dir: Path) -> Iterator[LaunchedBot]:
    """Run the bare floor app under the bot's gunicorn command line until the block ends."""
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port),
           "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads)}
    log_path = log_dir / f"floor-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(gunicorn_command(env, FLOOR_APP), stdout=log, stderr=log)
    floor = LaunchedBot(process, f"http://127.0.0.1:{port}", log_path)
    try:
        floor.wait_ready()
        yield floor
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_resident_mib(pid: int) -> float:
    """VmHWM, the most resident memory the process ever had, in MiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_memory(server: LaunchedBot) -> dict[str, float | list[float]]:
    """Peak resident memory of a gunicorn master and of each of its workers, in MiB."""
    return {
        "master": peak_resident_mib(server.process.pid),
        "workers": [peak_resident_mib(pid) for pid in sorted(server.worker_pids())],
    }
