"""What every store engine implements and trades in: the Store protocol, jobs, persistence,
and the checks and helpers the engines share."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from bot.jobs.storage.health import StoreUnavailable

Clock = Callable[[], float]
T = TypeVar("T")

# The format of what the engines write, stamped in the store (SQLite: `PRAGMA user_version`;
# Redis: the `version` key). Raise it whenever that format changes, with the step that migrates
# the previous one in `SqliteStore._migrate` and `RedisStore.migrate`. Version 1 is the format
# written before stores had a version, so migrating an unversioned store to it is stamping it.
# Version 2 adds records (`put_record`): new tables or keys beside the old ones, nothing converted.
# Version 3 adds due times (`schedule`): each job's `due_at`, and the queue ordered by it.
STORE_VERSION = 3

DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0
# How long a released owner stays refused: far longer than a write of a dead process can linger
# in flight (a command sent just before a SIGKILL may still reach Redis after its death is seen).
RELEASED_OWNER_SECONDS = 24 * 3600.0


class StoreTooNew(StoreUnavailable):
    """The store was written by a newer release, in a format this one does not know: writing
    it could corrupt what the newer release keeps, so nothing is written."""


def check_version(found: int) -> None:
    """Refuse a store stamped with a newer format than this release's (`StoreTooNew`)."""
    if found > STORE_VERSION:
        raise StoreTooNew(
            f"the store's format is version {found}, newer than this release knows "
            f"({STORE_VERSION}): run the release that wrote it, or a newer one")


class BacklogFull(Exception):
    """`accept` refused a new job because `max_backlog` jobs are already waiting."""


@dataclass(frozen=True)
class Job:
    """One accepted event (from a webhook, the websocket or its catch-up), or work scheduled
    for later, as handed to a worker process."""

    event_id: str
    kind: str
    payload: str
    attempts: int
    accepted_at: float
    due_at: float  # when it became claimable: its acceptance, or the time it was scheduled for


@dataclass(frozen=True)
class Persistence:
    """What of the store survives a restart of its server, as far as the engine can tell."""

    durable: bool | None  # None: the engine would not say (a managed Redis forbidding CONFIG)
    detail: str
    caveat: str = ""  # what a crash may still lose although the store persists


@dataclass(frozen=True)
class AbandonedJob:
    """A poison job kept (for the retention period) so an operator can see why it failed."""

    job: Job
    error: str
    abandoned_at: float


class Store(Protocol):
    """The one durable place every process of the bot shares, whichever engine holds it.

    - a queue of jobs: each event accepted once (deduped by id, for the retention), claimed
      under a lease, completed, retried later or abandoned for an operator to see; and work
      scheduled for later (`schedule`), claimable from its due time, cancelled or moved by id;
    - worker heartbeats, and the release of a dead process's claims;
    - facts and counters with lifetimes (`put_if_absent`, `get`, `set`, `delete`, `hit`): what
      the conversation remembers (its forms, rate limits, each message already sent) and which
      process holds the websocket, not only what webhooks need; each kind of fact is declared
      once, with its lifetime, by the module that owns it (`bot.jobs.storage.facts.Fact`);
    - records (`put_record`, `record`, `records`, `delete_record`): values kept by id in a
      collection, each listed under its tags newest first, with an optional end of life (what
      the bot remembers of a meeting, and the audit trail); values are opaque strings, sealed
      by whoever writes them;
    - the format version it was written in (`STORE_VERSION`), which every engine checks on
      opening.
    """

    def accept(
        self, event_id: str, kind: str, payload: str, max_backlog: int | None = None
    ) -> bool:
        """Record a new job durably; False if this event id was accepted within the retention.

        With `max_backlog`, raise BacklogFull instead when that many jobs are waiting (checked
        in the same atomic step, so the bound is exact however many deliveries arrive at once).
        A new job wakes one caller of `wait_for_work`, in whichever process it waits.
        """
        ...

    def schedule(self, event_id: str, kind: str, payload: str, due_at: float) -> bool:
        """Record a job claimable from `due_at` (by the store's clock; a time already past is
        now); False, changing nothing, if this id is unfinished or finished within the retention
        (counted from its due time), so scheduling again after a crash is harmless.

        Unlike `accept`, never refused for a full backlog: a job due later is not in it. Once
        due it is claimed, leased and finished as any other, and survives what they survive. It
        wakes a caller of `wait_for_work` when it is due now, or sooner than every other job.
        """
        ...

    def cancel(self, event_id: str) -> bool:
        """Finish an unfinished job without running it (again); False if none. It is never
        claimed after this; an attempt running now ends as it will (its `complete`, `extend`
        and `retry_later` find the job no longer its own). Its id stays remembered as a done
        job's: scheduling it again is refused for the retention."""
        ...

    def reschedule(self, event_id: str, due_at: float) -> bool:
        """Move an unfinished job to `due_at` (a time past: now), its attempts counted again
        from 0; False if none (finished, abandoned, unknown). A job running now is taken from
        its owner, as `cancel` does, and runs again from `due_at`. Wakes as `schedule` does."""
        ...

    def seconds_until_due(self) -> float | None:
        """How long (by the store's clock) until a job may be claimable: 0 when one is now,
        None when no job is unfinished. Counts every way a job comes back: a due time, a lease
        running out, a backoff ending. What a worker sleeps on between wake-ups."""
        ...

    def wait_for_work(self, timeout: float) -> bool:
        """Block until a job may have become claimable sooner than `seconds_until_due` said
        (True: an accept, a release, a job scheduled, moved or put back earlier than every
        other, in any process) or `timeout` seconds pass (False; an engine may return False
        sooner). One thread per process waits; each ring wakes one waiter. Nothing rings when
        a claimed job's lease runs out: a worker that died unwatched is found when its lease
        has run out and a waiter looks again."""
        ...

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Lease to `owner` the claimable job due first (for accepted jobs: the oldest; equal
        due times in the engine's order); None when nothing is claimable."""
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

    def retry_later(self, event_id: str, owner: str, delay_seconds: float) -> None:
        """Put back a job `owner` holds, claimable again in `delay_seconds`: it is no longer
        `owner`'s, so releasing `owner` later does not cut its backoff short. Wakes as
        `schedule` does when it comes back sooner than every other job."""
        ...

    def heartbeat(self, owner: str, ttl_seconds: float) -> None:
        """Say the worker process `owner` is alive for `ttl_seconds` more (nothing once `owner`
        was released)."""
        ...

    def live_workers(self) -> int:
        """Count the worker processes whose last heartbeat has not run out."""
        ...

    def release(self, owner: str) -> int:
        """`owner`'s process is known to be dead: every job it holds is claimable at once, its
        heartbeat is forgotten, and whatever it sent that arrives late loses (a claim or a
        heartbeat is refused for `RELEASED_OWNER_SECONDS`; an extend, complete or abandon finds
        the job no longer its own). Jobs of other owners are untouched. Returns how many jobs
        went back; they wake a waiting worker as an accept does."""
        ...

    def backlog(self) -> int:
        """Count the jobs due by now and neither completed nor abandoned (waiting, running or
        backing off): what the workers owe now, not what is scheduled for later."""
        ...

    def oldest_waiting(self) -> float | None:
        """When the longest-waiting of the `backlog`'s jobs became due (an accepted job: its
        acceptance); None when there is none."""
        ...

    def scheduled(self) -> int:
        """Count the jobs scheduled for later, not yet due."""
        ...

    def abandoned(self, limit: int = 100) -> list[AbandonedJob]:
        """List abandoned jobs still within the retention, most recently due first."""
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

    def put_record(self, collection: str, record_id: str, value: str, *, at: float,
                   tags: Sequence[str] = (), expires_at: float | None = None) -> None:
        """Write (or replace, with its tags) one record; listed under each tag, ordered by `at`.

        Replacing drops the record from the tags it no longer has, in the same atomic step.
        From `expires_at` on (by the store's clock) the record is gone, as an expired fact is.
        `collection` names the kind of record: non-empty, without ``:``.
        """
        ...

    def record(self, collection: str, record_id: str) -> str | None:
        """One record's value; None when absent or expired."""
        ...

    def records(self, collection: str, tag: str, *, since: float | None = None,
                until: float | None = None, limit: int = 100) -> list[tuple[str, str]]:
        """(record_id, value) of the unexpired records under `tag` with since <= at < until,
        newest `at` first (equal times: greater id first), at most `limit`."""
        ...

    def delete_record(self, collection: str, record_id: str) -> None:
        """Forget a record and its tags."""
        ...

    def ping(self) -> None:
        """Write a probe; raise StoreUnavailable when storage cannot take a write now."""
        ...

    def persistence(self) -> Persistence:
        """Whether accepted events survive a restart of the storage server."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_store_url(url: str) -> None:
    """Refuse a URL no engine can use (ValueError), without repeating it: what was typed may be
    a password, or a secret pasted into the wrong variable."""
    scheme = url_scheme(url)
    if scheme == "sqlite":
        sqlite_path_from_url(url)
        return
    if scheme not in ("redis", "rediss", "unix"):
        named = f" {scheme!r}" if scheme.isalnum() else ""
        raise ValueError(f"unsupported store URL scheme{named}: use sqlite:///relative/path.db, "
                         "sqlite:////absolute/path.db or redis://host:port/db")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- urllib checks the port only when asked for it
    except ValueError:
        raise ValueError("bad Redis URL: the port must be a number") from None
    if scheme == "unix" and not parts.path:
        raise ValueError("bad Redis URL: expected unix:///path/to.sock")
    if scheme != "unix" and not parts.hostname:
        raise ValueError("bad Redis URL: expected redis://host:port/db")
    database = parts.path.strip("/") if scheme != "unix" else ""
    if database and not database.isdigit():
        raise ValueError("bad Redis URL: the database must be a number, as in redis://host/0")


def sqlite_path_from_url(url: str) -> str:
    """Extract the file path of a sqlite URL, rejecting forms that would not be one shared file."""
    prefix = "sqlite:///"
    path = url[len(prefix) :] if url.lower().startswith(prefix) else ""
    if not path or path == ":memory:":
        raise ValueError(
            "bad sqlite store URL: expected sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (a file every process can share)"
        )
    return path


def redact_url(url: str) -> str:
    """The URL without its userinfo, which may hold a password: safe to print or log."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{tail}"


def url_scheme(url: str) -> str:
    """The engine a URL names: ``sqlite``, ``redis``, ``rediss``, ``unix`` (lowercase)."""
    return url.partition("://")[0].lower() if "://" in url else ""


def check_positive(name: str, seconds: float) -> None:
    """Reject zero or negative durations, which would make leases or windows meaningless."""
    if not seconds > 0:
        raise ValueError(f"{name} must be positive, got {seconds!r}")


def check_collection(collection: str) -> None:
    """Reject a collection name that could not be told apart in a key (``a:b`` + ``c`` and
    ``a`` + ``b:c``) or names nothing."""
    if not collection or ":" in collection:
        raise ValueError(f"a collection is a non-empty name without ':', got {collection!r}")


def check_limit(limit: int) -> None:
    """Reject a listing limit that asks for nothing or, to Redis, for everything (-1)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")


def unique_tags(tags: Sequence[str]) -> list[str]:
    """The tags once each, in the order given: a record is listed once under a tag."""
    if isinstance(tags, str):  # a lone tag would be read as its letters
        raise TypeError("tags must be a sequence of strings, not one string")
    return list(dict.fromkeys(tags))


def check_owner(owner: str) -> None:
    """Reject an empty owner, which could not be told apart from a job nobody has claimed."""
    if not owner:
        raise ValueError("owner must be a non-empty string")


def patiently(write: Callable[[], T], patience: float, pause: float = 0.25) -> T:
    """Run a write that must not be lost, retrying while storage is unavailable for a while.

    For the records written after an effect the bot cannot undo (a message sent, a job done):
    waiting out a short outage keeps a retry from doing the effect again.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return write()
        except StoreUnavailable:
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
