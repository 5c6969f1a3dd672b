"""Durable job queue, idempotency facts, rate-limit counters and records behind one interface.

The webhook endpoint calls `Store.accept` before answering 200, so an accepted event survives a
crash and a redelivered one is dropped. Workers then `claim` jobs with a lease (a visibility
timeout, as in SQS): a worker that dies lets its lease run out and the job becomes claimable
again, with `attempts` counting every claim; sooner when whoever saw it die (``serve``) calls
`release` with its owner id. Work for later is stored with a due time (`schedule`), claimable
from then on, and cancelled or moved by its id (`cancel`, `reschedule`); a worker sleeps until
`seconds_until_due` says a job comes back, or until `wait_for_work` rings. Worker processes
`heartbeat`, and `live_workers` counts them. Beside the jobs it keeps facts and counters with
lifetimes, and records (`put_record`): opaque values by id in a collection, listed under their
tags newest first, gone at their end of life.

Two engines implement it: SQLite (`sqlite:///relative.db`, `sqlite:////abs/path.db`), a file
shared by every process on one machine, and Redis (`redis://host:port/db`, `rediss://...`,
`unix:///path.sock`, optional `?prefix=icbot:`), shared by several machines. Pick one with
`open_store(url)`.

Errors: every failure of an engine (unreachable, full, corrupt, refusing writes) surfaces as
`StoreUnavailable` (see `bot.jobs.storage.health`); bad URLs raise `ValueError`.

Opening a store checks its format's version (`STORE_VERSION`, 3 since due times came; each
engine's module says what each version laid out): an older store is migrated in place, one a
newer release wrote is refused with `StoreTooNew` (a `StoreUnavailable`, which is how `serve`,
`work` and `listen` already stop on a store they cannot use).

    store = open_store("sqlite:///var/icbot.db")
    if store.accept(event_id, "messages", payload_json):
        ...  # answer 200; a worker thread will claim it
"""

from __future__ import annotations

import time

from bot.jobs.storage.contract import (
    DEFAULT_RETENTION_SECONDS,
    AbandonedJob,
    BacklogFull,
    Clock,
    Job,
    Persistence,
    Store,
    StoreTooNew,
    StoreUnavailable,
    check_store_url,
    patiently,
    redact_url,
    sqlite_path_from_url,
    url_scheme,
)
from bot.jobs.storage.facts import Fact


def open_store(
    url: str,
    *,
    clock: Clock = time.time,
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> Store:
    """Build the store a URL names, so deployments switch engines by configuration alone, its
    format checked and migrated (the SQLite engine does that on opening its file)."""
    check_store_url(url)
    if url_scheme(url) == "sqlite":
        from bot.jobs.storage.sqlite import SqliteStore

        return SqliteStore(
            sqlite_path_from_url(url), clock=clock, retention_seconds=retention_seconds
        )
    from bot.jobs.storage.redis import RedisStore

    store = RedisStore.from_url(url, clock=clock, retention_seconds=retention_seconds)
    try:
        store.migrate()
    except StoreTooNew:
        store.close()
        raise
    except StoreUnavailable:
        pass  # unreachable now: serve, work and listen refuse to start then; a web process
        # started during an outage answers 503 until it ends, as before (the outage is logged)
    return store


__all__ = [
    "DEFAULT_RETENTION_SECONDS",
    "AbandonedJob",
    "BacklogFull",
    "Clock",
    "Fact",
    "Job",
    "Persistence",
    "Store",
    "StoreTooNew",
    "StoreUnavailable",
    "check_store_url",
    "open_store",
    "patiently",
    "redact_url",
]
