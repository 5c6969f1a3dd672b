"""The floor served exactly as ``serve`` serves the bot, and the peak memory of such servers.

Memory is read from the whole process tree under the launched process, each process named by
its role, so the report holds whether ``serve`` execs gunicorn (the launched process is then
the gunicorn master) or supervises a gunicorn master and ``python -m bot work`` processes.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bot.devtools.as_deployed import (
    MASTER,
    OTHER,
    SUPERVISOR,
    WEB,
    WORKER,
    LaunchedBot,
    launched,
    process_roles,
)
from bot.settings import server_settings

FLOOR_APP = "bot.devtools.bench.floor_app:app"
ROLES = (SUPERVISOR, MASTER, WEB, WORKER, OTHER)  # the report's order
NUMBERED = (WEB, WORKER, OTHER)  # roles that come several to a server: "web 1", "web 2"...


@contextlib.contextmanager
def launched_floor(workers: int, threads: int, log_dir: Path) -> Iterator[LaunchedBot]:
    """Run the bare floor app under the bot's gunicorn command line until the block ends."""
    with launched(lambda env: server_settings(env).gunicorn_command(FLOOR_APP), {}, workers=workers,
                  threads=threads, log_dir=log_dir, name="floor") as floor:
        yield floor


def peak_memory(root: int) -> dict[str, Any]:
    """Peak resident memory (VmHWM) of every process of the server launched as ``root``, by
    role, and their total, in MiB. Sample it while the server runs: a process gone is left out."""
    per_process = {}
    for label, pid in labelled(root):
        mib = peak_resident_mib(pid)
        if mib is not None:
            per_process[label] = mib
    return {"per_process": per_process, "total": sum(per_process.values())}


def job_processes(labels: Iterable[str]) -> int:
    """How many of a server's processes (by :func:`labelled`'s labels) run the bot's jobs, and so
    look people up: its job workers, or its web workers when it has none (each of them then runs
    jobs of its own, as when ``serve`` execs gunicorn)."""
    roles = Counter(label.partition(" ")[0] for label in labels)
    return roles[WORKER] or roles[WEB]


def labelled(root: int) -> list[tuple[str, int]]:
    """Each process of the tree under ``root`` with its label ("gunicorn master", "web 2"...),
    in the report's order."""
    roles = process_roles(root)
    seen: Counter[str] = Counter()
    labels = []
    for pid, role in sorted(roles.items(), key=lambda item: (ROLES.index(item[1]), item[0])):
        seen[role] += 1
        labels.append((f"{role} {seen[role]}" if role in NUMBERED else role, pid))
    return labels


def peak_resident_mib(pid: int) -> float | None:
    """VmHWM, the most resident memory the process ever had, in MiB (None when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None  # a zombie has no memory lines
