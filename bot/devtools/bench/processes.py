"""The floor served exactly as ``serve`` serves the bot, and the peak memory of such servers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from bot.devtools.as_deployed import LaunchedBot, launched
from bot.settings import server_settings

FLOOR_APP = "bot.devtools.bench.floor_app:app"


@contextlib.contextmanager
def launched_floor(workers: int, threads: int, log_dir: Path) -> Iterator[LaunchedBot]:
    """Run the bare floor app under the bot's gunicorn command line until the block ends."""
    with launched(lambda env: server_settings(env).gunicorn_command(FLOOR_APP), {}, workers=workers,
                  threads=threads, log_dir=log_dir, name="floor") as floor:
        yield floor


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
