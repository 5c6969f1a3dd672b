"""Durable job queue, idempotency facts and rate-limit counters behind one small interface.

The webhook endpoint calls `Store.accept` before answering 200, so an accepted event survives a
crash and a redelivered one is dropped. Workers then `claim` jobs with a lease (a visibility
timeout, as in SQS): a worker that dies simply lets its lease run out and the job becomes
claimable again, with `attempts` counting every claim.

Two engines implement it: SQLite (`sqlite:///relative.db`, `sqlite:////abs/path.db`), a file
shared by every process on one machine, and Redis (`redis://host:port/db`, `rediss://...`,
`unix:///path.sock`, optional `?prefix=icbot:`), shared by several machines. Pick one with
`open_store(url)`.

Errors: every engine failure to reach its storage surfaces as `StoreUnavailable`; bad URLs
raise `ValueError`.

    store = open_store("sqlite:///var/icbot.db")
    if store.accept(event_id, "messages", payload_json):
        ...  # answer 200; a worker thread will claim it
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_RETENTION_SECONDS",
    "AbandonedJob",
    "BacklogFull",
    "Clock",
    "Job",
    "Store",
    "StoreUnavailable",
    "open_store",
]

Clock = Callable[[], float]

DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0


class BacklogFull(Exception):
    """`accept` refused a new job because `max_backlog` jobs are already waiting."""


class StoreUnavailable(Exception):
    """The storage engine cannot be reached; callers answer 503 so Webex redelivers later."""


@dataclass(frozen=True)
class Job:
    """One accepted webhook event as handed to a worker."""

    event_id: str
    kind: str
    payload: str
    attempts: int
    accepted_at: float


@dataclass(frozen=True)
class AbandonedJob:
    """A poison job kept (for the retention period) so an operator can see why it failed."""

    job: Job
    error: str
    abandoned_at: float


class Store(Protocol):
    """What the webhook endpoint and the workers need from durable storage."""

    def accept(
        self, event_id: str, kind: str, payload: str, max_backlog: int | None = None
    ) -> bool:
        """Record a new job durably; False if this event id was accepted within the retention.

        With `max_backlog`, raise BacklogFull instead when that many jobs are waiting (checked
        in the same atomic step, so the bound is exact however many deliveries arrive at once).
        """
        ...

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Lease the oldest ready job to `owner`; None when nothing is ready."""
        ...

    def complete(self, event_id: str, owner: str) -> None:
        """Finish a job held by `owner`; its id stays remembered for dedupe."""
        ...

    def abandon(self, event_id: str, owner: str, error: str) -> None:
        """Give up on a job held by `owner` for good, keeping it and `error` for inspection."""
        ...

    def extend(self, event_id: str, owner: str, lease_seconds: float) -> bool:
        """Renew the lease of a job still held by `owner`; False if another owner took it."""
        ...

    def backlog(self) -> int:
        """Count jobs accepted and neither completed nor abandoned."""
        ...

    def abandoned(self, limit: int = 100) -> list[AbandonedJob]:
        """List abandoned jobs still within the retention, most recently accepted first."""
        ...

    def put_if_absent(self, key: str, value: str, ttl_seconds: float | None = None) -> str | None:
        """Set `key` if absent and return None, else return the existing value unchanged."""
        ...

    def get(self, key: str) -> str | None:
        """Read a fact; None when absent or expired."""
        ...

    def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Write a fact unconditionally."""
        ...

    def delete(self, key: str) -> None:
        """Forget a fact."""
        ...

    def hit(self, key: str, window_seconds: float) -> int:
        """Record one event now; return how many fall in the last `window_seconds` (one per key)."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable when the engine cannot be reached."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_store(
    url: str,
    *,
    clock: Clock = time.time,
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> Store:
    """Build the store a URL names, so deployments switch engines by configuration alone."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from bot.storage.sqlite import SqliteStore

        return SqliteStore(
            sqlite_path_from_url(url), clock=clock, retention_seconds=retention_seconds
        )
    if scheme in ("redis", "rediss", "unix"):
        from bot.storage.redis import RedisStore

        return RedisStore.from_url(url, clock=clock, retention_seconds=retention_seconds)
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}: use sqlite:///relative/path.db, "
        "sqlite:////absolute/path.db or redis://host:port/db"
    )


def sqlite_path_from_url(url: str) -> str:
    """Extract the file path of a sqlite URL, rejecting forms that would not be one shared file."""
    prefix = "sqlite:///"
    path = url[len(prefix) :] if url.lower().startswith(prefix) else ""
    if not path or path == ":memory:":
        raise ValueError(
            f"bad sqlite store URL {url!r}: expected sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (a file every process can share)"
        )
    return path


def check_positive(name: str, seconds: float) -> None:
    """Reject zero or negative durations, which would make leases or windows meaningless."""
    if not seconds > 0:
        raise ValueError(f"{name} must be positive, got {seconds!r}")


def check_owner(owner: str) -> None:
    """Reject an empty owner, which could not be told apart from a job nobody has claimed."""
    if not owner:
        raise ValueError("owner must be a non-empty string")


@contextmanager
def unavailable_on(*errors: type[BaseException]) -> Iterator[None]:
    """Translate an engine's connectivity errors into StoreUnavailable for the caller."""
    try:
        yield
    except errors as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
