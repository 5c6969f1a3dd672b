"""The store's format has a version, checked whenever a store is opened: an unversioned store
(written before versions existed) is migrated in place, a newer one is refused untouched, so an
older release never writes what a newer one keeps. Both engines, and ``serve`` end to end."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.devtools.as_deployed import free_port
from bot.jobs.storage import StoreTooNew, StoreUnavailable, open_store
from bot.jobs.storage.contract import STORE_VERSION
from tests.support.keys import MEETING_KEYS

START = 1_750_000_000.0


class HandClock:
    """A clock a test moves, so acceptance times are known to the second."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Engine:
    """One engine's store under test, and the raw way to read and set its version stamp."""

    url: str
    read_version: Callable[[], int]
    write_version: Callable[[int | None], None]  # None: no stamp at all, as before versions
    to_version_2: Callable[[], None]  # make the store what version 2 left: no due times
    to_version_1: Callable[[], None]  # make the store what version 1 left: no records at all


@pytest.fixture(params=["sqlite", "redis"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "bot.sqlite3"

        def read_file() -> int:
            with sqlite3.connect(path) as db:
                return int(db.execute("PRAGMA user_version").fetchone()[0])

        def write_file(version: int | None) -> None:
            db = sqlite3.connect(path)
            db.execute(f"PRAGMA user_version = {version or 0}")
            db.close()

        def file_to_version_2() -> None:
            db = sqlite3.connect(path)
            db.executescript("""
                DROP INDEX jobs_due; DROP INDEX jobs_visible; DROP INDEX jobs_finished;
                ALTER TABLE jobs DROP COLUMN due_at;
                CREATE INDEX jobs_queued ON jobs (seq) WHERE state = 'queued';
                CREATE INDEX jobs_finished ON jobs (accepted_at) WHERE state <> 'queued';
                PRAGMA user_version = 2;
            """)
            db.close()

        def file_to_version_1() -> None:
            file_to_version_2()
            db = sqlite3.connect(path)
            db.execute("DROP TABLE records")
            db.execute("DROP TABLE record_tags")
            db.execute("PRAGMA user_version = 1")
            db.close()

        yield Engine(f"sqlite:///{path}", read_file, write_file, file_to_version_2,
                     file_to_version_1)
        return
    prefix = f"test-{uuid.uuid4().hex}:"
    base = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(base, decode_responses=True)

    def write_key(version: int | None) -> None:
        if version is None:
            client.delete(prefix + "version")
        else:
            client.set(prefix + "version", version)

    def keys_to_version_2() -> None:
        """Version 2 scored `ready` by a sequence number of acceptance and knew no due times."""
        assert not client.exists(prefix + "scheduled")
        ready = client.zrange(prefix + "ready", 0, -1)
        for seq, event_id in enumerate(ready, start=1):
            client.zadd(prefix + "ready", {event_id: seq})
            client.hset(f"{prefix}job:{event_id}", "seq", seq)
        for event_id in [*ready, *client.zrange(prefix + "leased", 0, -1)]:
            client.hdel(f"{prefix}job:{event_id}", "due_at")
        client.set(prefix + "seq", len(ready))
        write_key(2)

    def keys_to_version_1() -> None:
        keys_to_version_2()
        assert not [key for key in client.scan_iter(f"{prefix}*")
                    if key.removeprefix(prefix).startswith(("record:", "tagged"))]
        write_key(1)

    yield Engine(f"{base}?prefix={prefix}", lambda: int(client.get(prefix + "version") or 0),
                 write_key, keys_to_version_2, keys_to_version_1)
    client.close()


def a_version_1_store(engine: Engine) -> None:
    """The engine's store, as version 1 wrote it: a job done, one waiting, a fact, a hit."""
    store = open_store(engine.url)
    assert store.accept("evt-done", "messages", "{}")
    assert store.accept("evt-waiting", "messages", '{"id": "evt-waiting"}')
    done = store.claim("worker-a", 60)
    assert done is not None and done.event_id == "evt-done"
    store.complete(done.event_id, "worker-a")
    store.set("fact", "kept")
    assert store.hit("person", 60) == 1
    store.close()
    engine.to_version_1()


def test_a_new_store_is_stamped_with_this_release_format(engine: Engine) -> None:
    open_store(engine.url).close()
    assert engine.read_version() == STORE_VERSION == 3


def test_an_unversioned_store_is_migrated_in_place_with_everything_it_held(
    engine: Engine,
) -> None:
    a_version_1_store(engine)
    engine.write_version(None)  # what every release before versions left behind

    store = open_store(engine.url)
    try:
        assert engine.read_version() == STORE_VERSION
        assert not store.accept("evt-done", "messages", "{}")  # still remembered: no repeat
        assert store.get("fact") == "kept"
        job = store.claim("worker-b", 60)
        assert job is not None and job.event_id == "evt-waiting" and job.attempts == 1
        assert job.payload == '{"id": "evt-waiting"}'
    finally:
        store.close()


def test_a_version_1_store_becomes_current_keeps_what_it_held_and_takes_records(
    engine: Engine,
) -> None:
    a_version_1_store(engine)

    store = open_store(engine.url)
    try:
        assert engine.read_version() == STORE_VERSION
        assert not store.accept("evt-done", "messages", "{}")
        assert store.get("fact") == "kept"
        assert store.hit("person", 60) == 2
        job = store.claim("worker-b", 60)
        assert job is not None and job.event_id == "evt-waiting" and job.attempts == 1
        store.put_record("meetings", "m-1", "sealed", at=1.0, tags=["person:A"])
        assert store.record("meetings", "m-1") == "sealed"
        assert store.records("meetings", "person:A") == [("m-1", "sealed")]
    finally:
        store.close()
    store = open_store(engine.url)  # opening a current store again changes nothing
    try:
        assert engine.read_version() == STORE_VERSION
        assert store.records("meetings", "person:A") == [("m-1", "sealed")]
    finally:
        store.close()


def test_a_version_2_store_becomes_version_3_its_jobs_due_as_they_were_accepted(
    engine: Engine,
) -> None:
    clock = HandClock()
    store = open_store(engine.url, clock=clock)
    for event_id in ("evt-done", "evt-running", "evt-first", "evt-second"):
        assert store.accept(event_id, "messages", f'{{"id": "{event_id}"}}')
        clock.now += 1
    done = store.claim("worker-a", 60)
    assert done is not None and done.event_id == "evt-done"
    store.complete(done.event_id, "worker-a")
    running = store.claim("worker-a", 60)
    assert running is not None and running.event_id == "evt-running"
    store.put_record("meetings", "m-1", "sealed", at=1.0, tags=["person:A"])
    store.close()
    engine.to_version_2()

    store = open_store(engine.url, clock=clock)
    try:
        assert engine.read_version() == 3
        assert not store.accept("evt-done", "messages", "{}")  # still remembered
        assert store.records("meetings", "person:A") == [("m-1", "sealed")]
        assert (store.backlog(), store.scheduled(), store.oldest_waiting()) == (3, 0, START + 1)
        assert store.schedule("remind-1", "reminder", "{}", START)  # past: due now, last
        store.release("worker-a")  # the running job goes back, where it was accepted
        claimed = [store.claim("worker-b", 60) for _ in range(5)]
        assert [(job.event_id, job.due_at, job.accepted_at) for job in claimed if job] == [
            ("evt-running", START + 1, START + 1),
            ("evt-first", START + 2, START + 2),
            ("evt-second", START + 3, START + 3),
            ("remind-1", START + 4, START + 4),
        ]
        assert claimed[-1] is None
        assert store.schedule("remind-2", "reminder", "{}", START + 60)
        assert (store.backlog(), store.scheduled()) == (4, 1)
    finally:
        store.close()


def test_a_store_of_a_newer_format_is_refused_and_left_as_it_was(engine: Engine) -> None:
    store = open_store(engine.url)
    assert store.accept("evt-1", "messages", "{}")
    store.close()
    engine.write_version(STORE_VERSION + 1)

    with pytest.raises(StoreTooNew, match=rf"^the store's format is version {STORE_VERSION + 1}, "
                                          rf"newer than this release knows \({STORE_VERSION}\)"):
        open_store(engine.url)
    assert issubclass(StoreTooNew, StoreUnavailable)  # how serve, work and listen stop on it
    assert engine.read_version() == STORE_VERSION + 1

    engine.write_version(STORE_VERSION)  # the newer release's data, untouched by the refusal
    store = open_store(engine.url)
    try:
        assert store.backlog() == 1
    finally:
        store.close()


def test_a_newer_sqlite_file_gets_no_table_of_this_release(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {STORE_VERSION + 1}")
        db.execute("CREATE TABLE format2 (x)")
    with pytest.raises(StoreTooNew):
        open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"format2"}


def test_serve_refuses_a_newer_store_in_one_line_naming_storage_url(
    engine: Engine, tmp_path: Path
) -> None:
    open_store(engine.url).close()
    engine.write_version(STORE_VERSION + 1)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("LOG_LEVEL", "WEB_CONCURRENCY", "PORT", "HOST")}
    environment.update({
        "STORAGE_URL": engine.url,
        "WEBEX_BOT_TOKEN": "tok-store-version",
        "WEBHOOK_SECRET": "whs-store-version-0123456789",
        "MEETING_KEYS": MEETING_KEYS,
        "WEBEX_API_URL": f"http://127.0.0.1:{free_port()}/v1",  # nothing listens: no network
        "PORT": str(free_port()),
    })
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], env=environment,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: STORAGE_URL: "), errors[0]
    assert f"version {STORE_VERSION + 1}, newer than this release knows" in errors[0]
    assert "Traceback" not in result.stderr
    assert engine.read_version() == STORE_VERSION + 1


def test_a_redis_out_of_reach_at_opening_still_gives_a_store_that_reports_the_outage() -> None:
    """A web process started during an outage answers 503 until it ends, as before versions:
    the check is skipped, not fatal (serve, work and listen refuse to start on it anyway)."""
    store = open_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable):
            store.ping()
    finally:
        store.close()
