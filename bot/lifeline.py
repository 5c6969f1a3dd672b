"""Children that do not outlive their parent: a process manager may SIGKILL ``serve``, and
gunicorn's master, its web processes and the worker processes must not stay behind holding the
port and taking webhooks that nobody will process.

On Linux the kernel sends a child a signal of its choice when its parent dies
(``prctl(PR_SET_PDEATHSIG)``). It fires when the parent *thread* that started the child exits,
so the parent starts its children from the thread that lives as long as it does (the main
thread, in the supervisor and in gunicorn's master). The signal survives ``exec``. A parent that
died before the child asked for it sends nothing, so the child then looks for itself: if its
parent is no longer the one that started it, it exits at once. Elsewhere this does nothing.
Imports the standard library only: the supervisor, which stays small, uses it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> None:
    """Get ``signum`` when the process ``parent`` (this one's parent when it started it) dies;
    exit now if it already has. Call it in the child (a ``preexec_fn``, or a forked worker's
    start)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def child_of_this_process(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``signum`` when this process
    dies. Use it from the thread that lives as long as the process."""
    parent = os.getpid()
    return lambda: die_with_parent(parent, signum)
