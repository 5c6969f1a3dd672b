"""Storage taken away as it goes away in production: a full disk under SQLite, a Redis server
that refuses writes because its snapshot cannot be saved (``MISCONF``)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.faults import poll_until


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root only; skips otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("filling a filesystem needs root to mount a small tmpfs")
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"could not mount a tmpfs: {mounted.stderr.decode(errors='replace')}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> None:
    """Write a filler file until the filesystem has no byte left."""
    chunk = b"\0" * 65536
    with open(os.open(folder / "filler", os.O_WRONLY | os.O_CREAT), "wb", buffering=0) as filler:
        while chunk:
            try:
                filler.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]


def free(folder: Path) -> None:
    """Remove the filler: the filesystem has room again."""
    (folder / "filler").unlink()


class SnapshotsFail:
    """Makes a redis-server refuse writes (``MISCONF``) and accept them again, as when its disk
    fails: the snapshot's file name is taken by a folder, so each background save fails. The
    server must have been started with ``--save`` set (without it, Redis never refuses)."""

    def __init__(self, url: str, folder: Path) -> None:
        self._admin = redis.Redis.from_url(url, decode_responses=True)
        self._in_the_way = folder / "dump.rdb"

    def start(self) -> None:
        """Fail a background save; from then on every write answers MISCONF."""
        self._in_the_way.mkdir()
        self._admin.bgsave()
        poll_until(lambda: self._last_save() == "err", timeout=10)

    def stop(self) -> None:
        """Let a background save succeed: writes are accepted again."""
        self._in_the_way.rmdir()
        self._admin.bgsave()
        poll_until(lambda: self._last_save() == "ok", timeout=10)

    def close(self) -> None:
        self._admin.close()

    def _last_save(self) -> str:
        return str(self._admin.info("persistence")["rdb_last_bgsave_status"])
