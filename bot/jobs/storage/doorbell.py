"""A named pipe beside a SQLite file: how a web process tells the worker processes on the
machine that it stored a job, so an idle worker wakes at once instead of at its next poll.

Each accept writes one byte into ``<file>-wake`` without ever blocking: when no worker process
has the pipe open the write fails (ENXIO) and nobody needed waking; when the pipe is full (64 KiB
of unread bytes) its readers are already due to wake. A worker process holds the pipe open for
reading and writing, so it never sees end-of-file when the last writer goes, and waits on it
with ``poll()``. Each byte wakes one waiter in one process, as a blocking pop does on Redis.

Where no named pipe can be made (a filesystem without them), the doorbell is off: every wait
then ends after ``timeout`` as if it rang, so workers look at the queue as often as they would
wait (they find new jobs at their next look), and one warning says so.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

_NOBODY_WAITING = (errno.ENXIO, errno.EAGAIN, errno.ENOENT)


class Doorbell:
    """One named pipe shared by the processes using one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: tuple[int, int] | None = None  # (pid, fd): a fork must open its own
        self._lock = threading.Lock()
        self.enabled = self._make()

    def _make(self) -> bool:
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            pass
        except OSError as error:
            log.warning("cannot make the named pipe that wakes worker processes; they will "
                        "find new events at their next poll", extra={"error": str(error)})
            return False
        if not stat.S_ISFIFO(self.path.stat().st_mode):
            raise FileExistsError(f"{self.path.name} beside the SQLite file is not a named "
                                  "pipe: remove it, the bot makes its own")
        return True

    def ring(self) -> None:
        """Wake one waiting worker, if any process waits; never blocks, never fails."""
        if not self.enabled:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno not in _NOBODY_WAITING:
                log.warning("could not ring the worker processes' doorbell",
                            extra={"error": str(error)})
            return
        try:
            os.write(fd, b"\0")
        except BlockingIOError:
            pass  # full: plenty of wake-ups are already waiting to be read
        finally:
            os.close(fd)

    def wait(self, timeout: float) -> bool:
        """Block until a ring (True) or ``timeout`` seconds (False; True when off: a ring may
        have been missed)."""
        if not self.enabled:
            time.sleep(timeout)
            return True
        fd = self._reading()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return False
        try:
            return bool(os.read(fd, 1))
        except BlockingIOError:
            return False  # another process read this ring first

    def _reading(self) -> int:
        with self._lock:
            if self._reader is None or self._reader[0] != os.getpid():
                # Read and write: with a writer of its own the pipe never reports end-of-file.
                self._reader = (os.getpid(), os.open(self.path, os.O_RDWR | os.O_NONBLOCK))
            return self._reader[1]

    def close(self) -> None:
        """Stop reading (this process's waits reopen it)."""
        with self._lock:
            if self._reader is not None and self._reader[0] == os.getpid():
                os.close(self._reader[1])
            self._reader = None
