"""SQLite engine: one WAL-mode file shared by every thread and process on a machine.

Threads borrow connections from a small per-process pool (a fork starts a new one), so servers
that run each request on a new thread do not pile up open files. Every write takes the write lock
up front with `BEGIN IMMEDIATE`, so two claimers can never pick the same row.

Accepting a job is committed with `synchronous=FULL`, so it survives a crash of the process or of
the machine; the workers' bookkeeping uses `NORMAL` (it survives a process crash; a power cut may
lose its last moments, which at worst repeats a step). Waiting for the write lock is what a
webhook's acknowledgement pays, so it is kept short: the workers' writes queue on a per-process
Python lock and so meet an accept at most one at a time, a claim with nothing to take never asks
for the write lock, and the lock is retried every few hundred microseconds instead of with
SQLite's own busy handler, whose sleeps grow to 100 ms.
Each accept rings a doorbell (a named pipe beside the file, see `doorbell`) that wakes an idle
worker process at once, as does a job scheduled or put back sooner than every other. Finished
jobs, expired facts and records and old hits are pruned at most once per
`prune_interval_seconds`.

Tables: `jobs`, `facts`, `hits`, `workers` (version 1), and `records` (one row per record) with
`record_tags` (one row per tag of a record, keyed by collection, tag and time, so a listing is
one index range read newest first), added by version 2. Version 3 adds each job's `due_at` (its
acceptance, for an accepted event), which orders the queue, bounds the backlog and starts the
retention, with indexes on it and on `visible_at` (when a job is next claimable: its due time,
lease end or backoff end), so the next due time is one index step. The file's format version is
`PRAGMA user_version` (see `STORE_VERSION`), migrated when the file is opened: each version's
step (`_STEPS`) runs on a file older than it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.jobs.storage.contract import (
    DEFAULT_RETENTION_SECONDS,
    RELEASED_OWNER_SECONDS,
    STORE_VERSION,
    AbandonedJob,
    BacklogFull,
    Clock,
    Job,
    Persistence,
    check_collection,
    check_limit,
    check_owner,
    check_positive,
    check_version,
    unique_tags,
)
from bot.jobs.storage.doorbell import Doorbell
from bot.jobs.storage.health import Health

# What each version adds to the one before, in order (`_STEPS`). Each step may meet its tables
# already there (version 1's are those of the files written before versions existed), hence
# IF NOT EXISTS.
_VERSION_1 = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'abandoned')),
    owner TEXT,
    visible_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    accepted_at REAL NOT NULL,
    finished_at REAL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queued ON jobs (seq) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (accepted_at) WHERE state <> 'queued';
CREATE TABLE IF NOT EXISTS facts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at REAL
);
CREATE TABLE IF NOT EXISTS hits (
    key TEXT NOT NULL,
    at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS hits_key_at ON hits (key, at);
CREATE INDEX IF NOT EXISTS hits_expires_at ON hits (expires_at);
CREATE TABLE IF NOT EXISTS workers (
    owner TEXT PRIMARY KEY,
    alive_until REAL NOT NULL,
    released_at REAL
);
"""

_VERSION_2 = """
CREATE TABLE IF NOT EXISTS records (
    collection TEXT NOT NULL,
    record_id TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (collection, record_id)
);
CREATE INDEX IF NOT EXISTS records_expiring ON records (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS record_tags (
    collection TEXT NOT NULL,
    tag TEXT NOT NULL,
    at REAL NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (collection, tag, at, record_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_tags_of_record ON record_tags (collection, record_id);
"""

_VERSION_3 = """
ALTER TABLE jobs ADD COLUMN due_at REAL NOT NULL DEFAULT 0;
UPDATE jobs SET due_at = accepted_at;
DROP INDEX IF EXISTS jobs_queued;
DROP INDEX IF EXISTS jobs_finished;
CREATE INDEX jobs_due ON jobs (due_at, seq) WHERE state = 'queued';
CREATE INDEX jobs_visible ON jobs (visible_at) WHERE state = 'queued';
CREATE INDEX jobs_finished ON jobs (due_at) WHERE state <> 'queued';
"""

_STEPS = (_VERSION_1, _VERSION_2, _VERSION_3)

_JOB_COLUMNS = "event_id, kind, payload, attempts, accepted_at, due_at"


class SqliteStore:
    """Store backed by one SQLite file; safe to share one instance between threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        busy_timeout_seconds: float = 10.0,
        prune_interval_seconds: float = 3600.0,
    ) -> None:
        check_positive("retention_seconds", retention_seconds)
        self.path = Path(path).absolute()  # threads opened later must not follow a chdir
        self._clock = clock
        self._retention = retention_seconds
        self._busy_timeout = busy_timeout_seconds
        self._prune_interval = prune_interval_seconds
        self._next_prune = float("-inf")
        self._lock = threading.Lock()
        self._writing = (os.getpid(), threading.Lock())  # one writer per process at a time
        self._idle: list[sqlite3.Connection] = []
        self._pool_key = (os.getpid(), 0)  # (process, generation) the idle connections belong to
        # Any sqlite3 error, not only OperationalError: "file is not a database" is a DatabaseError.
        self._health = Health("sqlite", (sqlite3.Error, OSError), probe=lambda: self.ping())
        with self._health.guard(write=True):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._doorbell = Doorbell(self.path.with_name(self.path.name + "-wake"))
        try:
            with self._transaction() as db:
                self._migrate(db)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring the file to `STORE_VERSION` in the transaction `db` holds, so processes starting
        at once migrate it once; a file of a newer format is left untouched (`StoreTooNew`)."""
        found = db.execute("PRAGMA user_version").fetchone()[0]
        check_version(found)
        for version, step in enumerate(_STEPS, start=1):
            if found < version:  # 0, unversioned, holds version 1's tables: its step adds none
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
        if found < STORE_VERSION:
            db.execute(f"PRAGMA user_version = {STORE_VERSION}")

    @contextmanager
    def _borrow(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Lend a pooled connection in autocommit mode, reporting engine failures uniformly."""
        with self._lock:
            if self._pool_key[0] != os.getpid():  # forked: the parent's connections stay its own
                self._idle, self._pool_key = [], (os.getpid(), 0)
            key = self._pool_key
            db = self._idle.pop() if self._idle else None
        with self._health.guard(write=write):
            if db is None:
                db = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.rollback()
                with self._lock:
                    keep = key == self._pool_key
                    if keep:
                        self._idle.append(db)
                if not keep:
                    db.close()

    @contextmanager
    def _transaction(self, *, accepting: bool = False) -> Iterator[sqlite3.Connection]:
        """Run a write atomically, holding the write lock from the first statement.

        ``accepting`` is the webhook's path: durable on disk, and not queued behind the workers.
        """
        with self._lock:
            if self._writing[0] != os.getpid():  # forked: the parent's lock state is not ours
                self._writing = (os.getpid(), threading.Lock())
            queue = contextlib.nullcontext() if accepting else self._writing[1]
        with queue, self._borrow(write=True) as db:
            if accepting:
                db.execute("PRAGMA synchronous = FULL")
            try:
                self._begin(db)
                try:
                    yield db
                    db.execute("COMMIT")
                finally:
                    if db.in_transaction:  # the block raised: undo before the pragma below
                        db.rollback()
            finally:
                if accepting:
                    db.execute("PRAGMA synchronous = NORMAL")

    def _begin(self, db: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, retried in short steps while another process holds the lock."""
        deadline = time.monotonic() + self._busy_timeout
        pause = 0.0002
        db.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    def accept(
        self, event_id: str, kind: str, payload: str, max_backlog: int | None = None
    ) -> bool:
        """Insert a queued job due now unless the id is live or known within the retention."""
        return self._store_job(event_id, kind, payload, None, max_backlog)

    def schedule(self, event_id: str, kind: str, payload: str, due_at: float) -> bool:
        """Insert a queued job visible from its due time, unless the id is known."""
        return self._store_job(event_id, kind, payload, due_at, None)

    def _store_job(self, event_id: str, kind: str, payload: str, due_at: float | None,
                   max_backlog: int | None) -> bool:
        """Insert one job (due now when `due_at` is None) in one fsynced transaction, and ring
        when it is due now or sooner than every other."""
        with self._transaction(accepting=True) as db:
            # The clock is read holding the write lock: a job another process stored just before
            # is then surely due by `now`, and counted against the bound.
            now = self._clock()
            due = now if due_at is None else max(due_at, now)
            db.execute(
                "DELETE FROM jobs WHERE event_id = ? AND state <> 'queued' AND due_at <= ?",
                (event_id, now - self._retention),
            )
            if max_backlog is not None:
                if db.execute("SELECT 1 FROM jobs WHERE event_id = ?", (event_id,)).fetchone():
                    return False
                waiting = db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND due_at <= ?", (now,))
                if waiting.fetchone()[0] >= max_backlog:
                    raise BacklogFull(max_backlog)
            rings = self._first_visible(db, due, now)
            inserted = db.execute(
                "INSERT INTO jobs (event_id, kind, payload, state, visible_at, accepted_at, due_at)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, kind, payload, due, now, due),
            ).rowcount
        if inserted and rings:
            self._doorbell.ring()
        return inserted == 1

    @staticmethod
    def _first_visible(db: sqlite3.Connection, visible_at: float, now: float,
                       other_than: str = "") -> bool:
        """Whether a job visible from `visible_at` is due now or sooner than every other
        unfinished job (`other_than` left out): only then may a sleeping worker need waking."""
        if visible_at <= now:
            return True
        earliest = db.execute(
            "SELECT MIN(visible_at) FROM jobs WHERE state = 'queued' AND event_id <> ?",
            (other_than,)).fetchone()[0]
        return earliest is None or visible_at < earliest

    def cancel(self, event_id: str) -> bool:
        """Mark an unfinished job done without running it; its row stays for dedupe."""
        with self._transaction() as db:
            cancelled = db.execute(
                "UPDATE jobs SET state = 'done', payload = '', owner = NULL, finished_at = ?"
                " WHERE event_id = ? AND state = 'queued'",
                (self._clock(), event_id),
            ).rowcount
        return cancelled == 1

    def reschedule(self, event_id: str, due_at: float) -> bool:
        """Give an unfinished job a new due time, owned by nobody, its attempts back to 0."""
        now = self._clock()
        due = max(due_at, now)
        with self._transaction() as db:
            rings = self._first_visible(db, due, now, other_than=event_id)
            moved = db.execute(
                "UPDATE jobs SET due_at = ?, visible_at = ?, owner = NULL, attempts = 0"
                " WHERE event_id = ? AND state = 'queued'",
                (due, due, event_id),
            ).rowcount
        if moved and rings:
            self._doorbell.ring()
        return moved == 1

    def seconds_until_due(self) -> float | None:
        """The earliest visibility time of an unfinished job, from now (one index step)."""
        with self._borrow() as db:
            earliest = db.execute(
                "SELECT MIN(visible_at) FROM jobs WHERE state = 'queued'").fetchone()[0]
        return None if earliest is None else max(0.0, earliest - self._clock())

    def wait_for_work(self, timeout: float) -> bool:
        """Wait on the named pipe every accept on this machine rings."""
        return self._doorbell.wait(timeout)

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        """Lease the queued job due first whose visibility time has come."""
        check_owner(owner)
        check_positive("lease_seconds", lease_seconds)
        now = self._clock()
        self._maybe_prune(now)
        if not self._any_visible(now):
            return None  # an idle poll must not take the write lock the webhooks wait for
        with self._transaction() as db:
            if self._released(db, owner):
                return None
            row = db.execute(
                f"SELECT seq, {_JOB_COLUMNS} FROM jobs WHERE state = 'queued' AND due_at <= ?"
                " AND visible_at <= ? ORDER BY due_at, seq LIMIT 1",
                (now, now),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET owner = ?, visible_at = ?, attempts = attempts + 1 WHERE seq = ?",
                (owner, now + lease_seconds, row[0]),
            )
        event_id, kind, payload, attempts, accepted_at, due_at = row[1:]
        return Job(event_id, kind, payload, attempts + 1, accepted_at, due_at)

    def _any_visible(self, now: float) -> bool:
        """Whether some queued job may be claimable now (read only; the claim checks again)."""
        with self._borrow() as db:
            return db.execute(
                "SELECT 1 FROM jobs WHERE state = 'queued' AND visible_at <= ? LIMIT 1", (now,)
            ).fetchone() is not None

    def complete(self, event_id: str, owner: str) -> None:
        """Mark done and drop the payload; the row stays as the dedupe record."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'done', payload = '', finished_at = ?"
                " WHERE event_id = ? AND owner = ? AND state = 'queued'",
                (self._clock(), event_id, owner),
            )

    def abandon(self, event_id: str, owner: str, error: str) -> None:
        """Park a poison job with its error so it is never claimed again."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'abandoned', error = ?, finished_at = ?"
                " WHERE event_id = ? AND owner = ? AND state = 'queued'",
                (error, self._clock(), event_id, owner),
            )

    def extend(self, event_id: str, owner: str, lease_seconds: float) -> bool:
        """Push the visibility time out, only while `owner` is still the last claimer."""
        check_positive("lease_seconds", lease_seconds)
        with self._transaction() as db:
            renewed = db.execute(
                "UPDATE jobs SET visible_at = ?"
                " WHERE event_id = ? AND owner = ? AND state = 'queued'",
                (self._clock() + lease_seconds, event_id, owner),
            ).rowcount
        return renewed == 1

    def retry_later(self, event_id: str, owner: str, delay_seconds: float) -> None:
        """Hand the job back to nobody, visible again after the delay."""
        check_positive("delay_seconds", delay_seconds)
        now = self._clock()
        with self._transaction() as db:
            rings = self._first_visible(db, now + delay_seconds, now, other_than=event_id)
            put_back = db.execute(
                "UPDATE jobs SET owner = NULL, visible_at = ?"
                " WHERE event_id = ? AND owner = ? AND state = 'queued'",
                (now + delay_seconds, event_id, owner),
            ).rowcount
        if put_back and rings:
            self._doorbell.ring()

    def heartbeat(self, owner: str, ttl_seconds: float) -> None:
        """Move the owner's row's end of life out, unless the owner was released."""
        check_owner(owner)
        check_positive("ttl_seconds", ttl_seconds)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO workers (owner, alive_until) VALUES (?, ?) ON CONFLICT (owner)"
                " DO UPDATE SET alive_until = excluded.alive_until WHERE released_at IS NULL",
                (owner, self._clock() + ttl_seconds),
            )

    def live_workers(self) -> int:
        """Count the rows whose end of life is still ahead (a released row's is past)."""
        with self._borrow() as db:
            return db.execute("SELECT COUNT(*) FROM workers WHERE alive_until > ?",
                              (self._clock(),)).fetchone()[0]

    def release(self, owner: str) -> int:
        """Mark the owner released and make its jobs visible now, in one transaction."""
        check_owner(owner)
        now = self._clock()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO workers (owner, alive_until, released_at) VALUES (?, 0, ?)"
                " ON CONFLICT (owner) DO UPDATE SET alive_until = 0, released_at = ?",
                (owner, now, now),
            )
            released: int = db.execute(
                "UPDATE jobs SET owner = NULL, visible_at = MIN(visible_at, ?)"
                " WHERE owner = ? AND state = 'queued'",
                (now, owner),
            ).rowcount
        if released:
            self._doorbell.ring()
        return released

    @staticmethod
    def _released(db: sqlite3.Connection, owner: str) -> bool:
        """Whether `owner` was released (and so must not claim again)."""
        return db.execute("SELECT 1 FROM workers WHERE owner = ? AND released_at IS NOT NULL",
                          (owner,)).fetchone() is not None

    def backlog(self) -> int:
        """Count queued jobs due by now, leased or not (an index range)."""
        with self._borrow() as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND due_at <= ?",
                              (self._clock(),)).fetchone()[0]

    def oldest_waiting(self) -> float | None:
        """The earliest due time of a queued job, if it has come (one index step)."""
        with self._borrow() as db:
            due_at = db.execute("SELECT MIN(due_at) FROM jobs WHERE state = 'queued'"
                                ).fetchone()[0]
        return None if due_at is None or due_at > self._clock() else due_at

    def scheduled(self) -> int:
        """Count queued jobs whose due time is still ahead."""
        with self._borrow() as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND due_at > ?",
                              (self._clock(),)).fetchone()[0]

    def abandoned(self, limit: int = 100) -> list[AbandonedJob]:
        """List abandoned jobs within the retention, most recently due first."""
        with self._borrow() as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS}, error, finished_at FROM jobs"
                " WHERE state = 'abandoned' AND due_at > ?"
                " ORDER BY due_at DESC, seq DESC LIMIT ?",
                (self._clock() - self._retention, limit),
            ).fetchall()
        return [AbandonedJob(Job(*row[:6]), row[6], row[7]) for row in rows]

    def put_if_absent(self, key: str, value: str, ttl_seconds: float | None = None) -> str | None:
        """Insert the fact unless a live one exists, whose value is then returned."""
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT value FROM facts WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (key, now),
            ).fetchone()
            if row is not None:
                return row[0]
            self._put(db, key, value, ttl_seconds, now)
        return None

    def get(self, key: str) -> str | None:
        """Read a live fact."""
        with self._borrow() as db:
            row = db.execute(
                "SELECT value FROM facts WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (key, self._clock()),
            ).fetchone()
        return None if row is None else row[0]

    def set(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        """Overwrite the fact and its expiry."""
        with self._transaction() as db:
            self._put(db, key, value, ttl_seconds, self._clock())

    @staticmethod
    def _put(
        db: sqlite3.Connection, key: str, value: str, ttl_seconds: float | None, now: float
    ) -> None:
        """Upsert one fact with an optional expiry, shared by set and put_if_absent."""
        if ttl_seconds is not None:
            check_positive("ttl_seconds", ttl_seconds)
        db.execute(
            "INSERT INTO facts (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key)"
            " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            (key, value, None if ttl_seconds is None else now + ttl_seconds),
        )

    def delete(self, key: str) -> None:
        """Forget a fact."""
        with self._transaction() as db:
            db.execute("DELETE FROM facts WHERE key = ?", (key,))

    def hit(self, key: str, window_seconds: float) -> int:
        """Record a hit and count this key's hits newer than the window start."""
        check_positive("window_seconds", window_seconds)
        now = self._clock()
        with self._transaction() as db:
            db.execute("DELETE FROM hits WHERE key = ? AND at <= ?", (key, now - window_seconds))
            db.execute(
                "INSERT INTO hits (key, at, expires_at) VALUES (?, ?, ?)",
                (key, now, now + window_seconds),
            )
            return db.execute("SELECT COUNT(*) FROM hits WHERE key = ?", (key,)).fetchone()[0]

    def put_record(self, collection: str, record_id: str, value: str, *, at: float,
                   tags: Sequence[str] = (), expires_at: float | None = None) -> None:
        """Upsert the record and put its tag rows in place of the ones it had."""
        check_collection(collection)
        tags = unique_tags(tags)
        with self._transaction() as db:
            db.execute("DELETE FROM record_tags WHERE collection = ? AND record_id = ?",
                       (collection, record_id))
            db.execute(
                "INSERT INTO records (collection, record_id, value, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (collection, record_id)"
                " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (collection, record_id, value, expires_at),
            )
            db.executemany(
                "INSERT INTO record_tags (collection, tag, at, record_id) VALUES (?, ?, ?, ?)",
                [(collection, tag, at, record_id) for tag in tags],
            )

    def record(self, collection: str, record_id: str) -> str | None:
        """Read a live record."""
        check_collection(collection)
        with self._borrow() as db:
            row = db.execute(
                "SELECT value FROM records WHERE collection = ? AND record_id = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (collection, record_id, self._clock()),
            ).fetchone()
        return None if row is None else row[0]

    def records(self, collection: str, tag: str, *, since: float | None = None,
                until: float | None = None, limit: int = 100) -> list[tuple[str, str]]:
        """Walk the tag's rows backwards in time, skipping expired records."""
        check_collection(collection)
        check_limit(limit)
        with self._borrow() as db:
            rows = db.execute(
                "SELECT t.record_id, r.value FROM record_tags AS t JOIN records AS r"
                " ON r.collection = t.collection AND r.record_id = t.record_id"
                " WHERE t.collection = ? AND t.tag = ? AND t.at >= ? AND t.at < ?"
                " AND (r.expires_at IS NULL OR r.expires_at > ?)"
                " ORDER BY t.at DESC, t.record_id DESC LIMIT ?",
                (collection, tag, float("-inf") if since is None else since,
                 float("inf") if until is None else until, self._clock(), limit),
            ).fetchall()
        return [(record_id, value) for record_id, value in rows]

    def delete_record(self, collection: str, record_id: str) -> None:
        """Forget the record and its tag rows."""
        check_collection(collection)
        with self._transaction() as db:
            self._delete_records(db, "collection = ? AND record_id = ?", (collection, record_id))

    @staticmethod
    def _delete_records(db: sqlite3.Connection, where: str, values: tuple[object, ...]) -> None:
        """Delete the records `where` selects, with their tag rows first."""
        db.execute(f"DELETE FROM record_tags WHERE (collection, record_id) IN"
                   f" (SELECT collection, record_id FROM records WHERE {where})", values)
        db.execute(f"DELETE FROM records WHERE {where}", values)

    def ping(self) -> None:
        """Prove the file can be written: a full disk still lets it be read. Not queued behind
        the workers' writes, as an accept is not: it is also the outage probe, which runs
        while a worker's write still holds that queue."""
        with self._transaction(accepting=True) as db:
            self._put(db, "health:ping", repr(self._clock()), None, self._clock())

    def persistence(self) -> Persistence:
        """A file on disk, each accept fsynced: durable as the disk is."""
        return Persistence(True, "SQLite file, each accepted event fsynced (synchronous=FULL)")

    def close(self) -> None:
        """Close idle connections now and borrowed ones when returned; later calls reopen."""
        with self._lock:
            idle, self._idle = self._idle, []
            pid, generation = self._pool_key
            if pid != os.getpid():  # forked: the parent's connections are not ours to close
                idle = []
            self._pool_key = (os.getpid(), generation + 1)
        for db in idle:
            db.close()
        self._doorbell.close()

    def _maybe_prune(self, now: float) -> None:
        """Delete what the retention and expiries no longer need, at most once per interval."""
        if now < self._next_prune:
            return
        self._next_prune = now + self._prune_interval
        with self._transaction() as db:
            db.execute(
                "DELETE FROM jobs WHERE state <> 'queued' AND due_at <= ?",
                (now - self._retention,),
            )
            db.execute("DELETE FROM facts WHERE expires_at <= ?", (now,))
            self._delete_records(db, "expires_at <= ?", (now,))
            db.execute("DELETE FROM hits WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM workers WHERE COALESCE(released_at + ?, alive_until) <= ?",
                       (RELEASED_OWNER_SECONDS, now))
