"""The floor served exactly as ``serve`` serves the bot, and the peak memory of such servers.

Memory is read from the whole process tree under the launched process, each process named by
its role, so the report holds whether ``serve`` execs gunicorn (the launched process is then
the gunicorn master) or supervises a gunicorn master and ``python -m bot work`` processes.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

from bot.devtools.as_deployed import LaunchedBot, launched
from bot.settings import server_settings

FLOOR_APP = "bot.devtools.bench.floor_app:app"
SUPERVISOR = "supervisor"
MASTER = "gunicorn master"
WEB = "web"
WORKER = "worker"
OTHER = "other"
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
    roles = roles_in_tree(root)
    seen: Counter[str] = Counter()
    labels = []
    for pid, role in sorted(roles.items(), key=lambda item: (ROLES.index(item[1]), item[0])):
        seen[role] += 1
        labels.append((f"{role} {seen[role]}" if role in NUMBERED else role, pid))
    return labels


def roles_in_tree(root: int) -> dict[int, str]:
    """The role of ``root`` and of every process under it, told by command line and parent."""
    parents = descendants(root)
    argvs = {pid: command_line(pid) for pid in parents}
    roles: dict[int, str] = {}
    for pid, parent in parents.items():  # parents come before their children
        if parent is None:
            roles[pid] = MASTER if _is_gunicorn(argvs[pid]) else SUPERVISOR
        else:
            roles[pid] = _role(argvs[pid], argvs[parent], roles[parent])
    return roles


def _role(argv: tuple[str, ...], parent_argv: tuple[str, ...], parent_role: str) -> str:
    """A process under the launched one: gunicorn's master and the web workers it forked,
    a ``python -m bot work`` job worker, or something else."""
    if parent_role == MASTER:
        return WEB
    if _is_gunicorn(argv):
        return OTHER if _is_gunicorn(parent_argv) else MASTER
    if ("bot", "work") in pairwise(" ".join(argv).split()):  # a retitled process has one arg
        return WORKER
    return OTHER


def _is_gunicorn(argv: tuple[str, ...]) -> bool:
    return any("gunicorn" in arg for arg in argv)


def descendants(root: int) -> dict[int, int | None]:
    """``root`` and every process under it, each with its parent (None for ``root``), parents
    first."""
    parents: dict[int, int | None] = {root: None}
    waiting = [root]
    while waiting:
        pid = waiting.pop()
        for child in children(pid):
            parents[child] = pid
            waiting.append(child)
    return parents


def children(pid: int) -> list[int]:
    """The processes ``pid`` started, read from every one of its threads: a child is listed in
    the ``children`` file of the thread that forked it, not always the main thread's."""
    found: list[int] = []
    for listing in sorted(Path(f"/proc/{pid}/task").glob("*/children")):
        with contextlib.suppress(OSError):  # the thread or the process has just ended
            found.extend(int(child) for child in listing.read_text().split())
    return found


def command_line(pid: int) -> tuple[str, ...]:
    """The process's argv (empty when it is gone, or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ()
    return tuple(text.removesuffix("\0").split("\0")) if text else ()


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
