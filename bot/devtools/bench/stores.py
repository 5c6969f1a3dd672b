"""Where each bot launch keeps its data: a fresh SQLite file, or a fresh key prefix on a
redis-server the benchmark runs itself, persisting as a deployment's would. Usage::

    with stores(folder, ("sqlite", "redis")) as where:   # starts redis-server, stops it after
        where.fresh("redis")     # redis://127.0.0.1:PORT/0?prefix=bench-1:
        where.fresh("sqlite")    # sqlite:////tmp/icbot-bench-.../bot-2.sqlite3
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis

from bot.devtools.as_deployed import free_port

STARTUP_SECONDS = 10.0
STOP_SECONDS = 10.0
POLL_SECONDS = 0.05
# What a deployed Redis would run with: the bot refuses one that persists nothing, an fsync a
# second is the usual price of AOF, and a full Redis must refuse writes rather than evict jobs.
PERSISTENCE = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
               "--maxmemory-policy", "noeviction")


class Stores:
    """Hands each bot launch a store no other launch has used, on the engine asked for."""

    def __init__(self, folder: Path, redis_url: str | None) -> None:
        self._folder = folder
        self._redis_url = redis_url
        self._launches = itertools.count(1)

    def fresh(self, engine: str) -> str:
        """The STORAGE_URL of an empty store on ``engine`` ("sqlite" or "redis")."""
        launch = next(self._launches)
        if engine == "sqlite":
            return f"sqlite:///{self._folder}/bot-{launch}.sqlite3"
        if engine == "redis" and self._redis_url is not None:
            return f"{self._redis_url}?prefix=bench-{launch}:"
        raise ValueError(f"no {engine} store in this benchmark")


@contextlib.contextmanager
def stores(folder: Path, engines: Sequence[str]) -> Iterator[Stores]:
    """The stores for ``engines``; when Redis is one, a redis-server runs until the block ends."""
    if "redis" not in engines:
        yield Stores(folder, None)
        return
    with redis_server(folder / "redis") as url:
        yield Stores(folder, url)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server on a free port, its files and log in ``folder``; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "redis.log"
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            *PERSISTENCE]
    with log_path.open("wb") as log:
        server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_ready(server, url, log_path)
        yield url
    finally:
        server.terminate()  # SIGTERM: it flushes its AOF and exits
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    """Block until the server answers PING (bounded); raise with its log if it never does."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(redis.ConnectionError):  # refused, or loading its AOF
                if client.ping():
                    return
            time.sleep(POLL_SECONDS)
    finally:
        client.close()
    raise RuntimeError(f"redis-server did not start:\n{log_path.read_text(errors='replace')}")
