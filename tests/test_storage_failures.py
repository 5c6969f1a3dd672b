"""Storage that fails in every way it can: 503 JSON at the edge, workers that outlive it.

Redis is a real redis-server told to refuse writes as it does in production (out of memory,
a read-only replica, a failed snapshot); SQLite is a file that is not a database. The workers
are driven over a store that fails on command, so every store call a worker makes is covered.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from bot.devtools.as_deployed import free_port
from bot.jobs.runner import Attempt, JobRunner
from bot.jobs.storage import Job, Store, StoreUnavailable, open_store
from bot.jobs.storage.sqlite import SqliteStore
from bot.secret import Secret
from bot.service import BotService
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.envelope import sign
from tests.conftest import WEBHOOK_SECRET
from tests.support.faults import RedisProcess, poll_until
from tests.support.keys import TEST_KEYRING

BODY = b'{"resource":"messages","event":"created","data":{"id":"M-1","roomId":"R"}}'
HEADERS = {"X-Spark-Signature": sign(BODY, WEBHOOK_SECRET), "Content-Type": "application/json"}


def client_for(store: Store) -> FlaskClient:
    """The Flask app of a bot on ``store`` (no worker thread: only the edge is tested)."""
    settings = Settings(bot_token=Secret("token"), webhook_secret=Secret(WEBHOOK_SECRET),
                        meeting_keys=TEST_KEYRING, worker_threads=1)
    service = BotService(settings, store=store)
    service.readiness = lambda: _store_problems(service)  # type: ignore[method-assign]
    app = create_app(service)
    service.stop()
    return app.test_client()


def _store_problems(service: BotService) -> list[str]:
    """The readiness check without the token check (there is no Webex here)."""
    try:
        service.store.ping()
    except StoreUnavailable:
        return ["storage unavailable"]
    return []


def assert_refused_as_json(client: FlaskClient) -> None:
    """A delivery gets 503 JSON (Webex redelivers it) and /readyz 503 JSON, never HTML 500."""
    delivery = client.post("/webhooks", data=BODY, headers=HEADERS)
    assert (delivery.status_code, delivery.get_json()) == (503, {"error": "storage unavailable"})
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (
        503, {"status": "not ready", "problems": ["storage unavailable"]})


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of the test's own, which it may break, keeping its files in ``redis/``."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    (tmp_path / "redis").mkdir()
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.kill()  # a broken server may refuse to shut down cleanly


def out_of_memory(admin: redis.Redis, tmp_path: Path) -> None:
    admin.config_set("maxmemory", "1")  # with noeviction: writes answer OOM


def read_only_replica(admin: redis.Redis, tmp_path: Path) -> None:
    admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # writes answer READONLY


def snapshot_failed(admin: redis.Redis, tmp_path: Path) -> None:
    """A background save fails (the server's folder is gone): writes answer MISCONF."""
    admin.config_set("save", "3600 1")
    shutil.rmtree(tmp_path / "redis")
    admin.bgsave()
    poll_until(lambda: admin.info("persistence")["rdb_last_bgsave_status"] == "err", timeout=10)


@pytest.mark.parametrize("refusal", [out_of_memory, read_only_replica, snapshot_failed],
                         ids=["OOM", "READONLY", "MISCONF"])
def test_redis_refusing_writes_is_503_json(
    refusal: Callable[[redis.Redis, Path], None], redis_process: RedisProcess, tmp_path: Path
) -> None:
    client = client_for(open_store(redis_process.url))
    admin = redis.Redis.from_url(redis_process.url, decode_responses=True)
    refusal(admin, tmp_path)
    assert_refused_as_json(client)


def test_a_sqlite_file_that_is_not_a_database_is_503_json(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bot.sqlite3")
    client = client_for(store)
    store.close()  # connections opened from now on read the damaged file
    store.path.write_bytes(b"this is not a database" * 512)
    assert_refused_as_json(client)


# Records ------------------------------------------------------------------------------------

RECORD_OPERATIONS: dict[str, Callable[[Store], object]] = {
    "put_record": lambda store: store.put_record("meetings", "m", "v", at=1.0, tags=["t"]),
    "record": lambda store: store.record("meetings", "m"),
    "records": lambda store: store.records("meetings", "t"),
    "delete_record": lambda store: store.delete_record("meetings", "m"),
}


def broken_sqlite(tmp_path: Path) -> Store:
    """A store whose file was replaced by one that is not a database."""
    store = SqliteStore(tmp_path / "bot.sqlite3")
    store.close()
    store.path.write_bytes(b"this is not a database" * 512)
    return store


def unreachable_redis(tmp_path: Path) -> Store:
    """A store on a Redis nobody runs."""
    return open_store(f"redis://127.0.0.1:{free_port()}/0")


@pytest.mark.parametrize("operation", RECORD_OPERATIONS.values(), ids=RECORD_OPERATIONS)
@pytest.mark.parametrize("broken", [broken_sqlite, unreachable_redis], ids=["sqlite", "redis"])
def test_every_record_operation_raises_store_unavailable_in_an_outage(
    broken: Callable[[Path], Store], operation: Callable[[Store], object], tmp_path: Path
) -> None:
    store = broken(tmp_path)
    try:
        with pytest.raises(StoreUnavailable):
            operation(store)
    finally:
        store.close()


def test_redis_refusing_writes_refuses_record_writes_and_still_reads_them(
    redis_process: RedisProcess, tmp_path: Path
) -> None:
    store = open_store(redis_process.url)
    store.put_record("meetings", "m", "v", at=1.0, tags=["t"])
    admin = redis.Redis.from_url(redis_process.url, decode_responses=True)
    read_only_replica(admin, tmp_path)
    try:
        for write in ("put_record", "delete_record"):
            with pytest.raises(StoreUnavailable, match="read only"):
                RECORD_OPERATIONS[write](store)
        assert store.record("meetings", "m") == "v"
        assert store.records("meetings", "t") == [("m", "v")]
    finally:
        admin.close()
        store.close()


# The workers --------------------------------------------------------------------------------


class FailingStore(SqliteStore):
    """A real SQLite store whose every call fails while ``down`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down = threading.Event()
        self.failures = 0

    def _check(self) -> None:
        if self.down.is_set():
            self.failures += 1
            raise StoreUnavailable("OperationalError: disk I/O error")

    def claim(self, owner: str, lease_seconds: float) -> Job | None:
        self._check()
        return super().claim(owner, lease_seconds)

    def complete(self, event_id: str, owner: str) -> None:
        self._check()
        super().complete(event_id, owner)

    def abandon(self, event_id: str, owner: str, error: str) -> None:
        self._check()
        super().abandon(event_id, owner, error)

    def extend(self, event_id: str, owner: str, lease_seconds: float) -> bool:
        self._check()
        return super().extend(event_id, owner, lease_seconds)


def test_no_store_failure_ends_a_worker_thread_and_the_work_is_done_after(tmp_path: Path) -> None:
    """Claims, completions, retries, renewals and abandons all fail for a while: every thread
    lives on, and once storage is back each job is done exactly once, with no restart."""
    store = FailingStore(tmp_path / "bot.sqlite3")
    processed: list[str] = []
    lock = threading.Lock()
    outage = threading.Event()

    def process(attempt: Attempt) -> None:
        job = attempt.job
        with lock:
            processed.append(job.event_id)
            if not outage.is_set():  # storage goes away while the first job is worked on
                outage.set()
                store.down.set()
        if job.event_id == "fails-once" and job.attempts == 1:
            raise RuntimeError("upstream failure: retry")

    for event_id in ("fails-once", "a", "b", "c"):
        store.accept(event_id, "messages", "{}")
    runner = JobRunner(store, process, threads=3, lease_seconds=0.6, poll_seconds=0.02,
                       max_attempts=5)
    runner.start()
    try:
        poll_until(lambda: store.failures > 20, timeout=10)
        assert runner.running() == (5, 5)
        store.down.clear()
        assert runner.wait_until_idle(timeout=10)
        assert runner.running() == (5, 5)
    finally:
        store.down.clear()
        runner.stop()
    assert sorted(set(processed)) == ["a", "b", "c", "fails-once"]
    assert store.backlog() == 0 and store.abandoned() == []


def test_a_worker_that_stopped_makes_the_bot_not_ready(tmp_path: Path) -> None:
    settings = Settings(bot_token=Secret("token"), webhook_secret=Secret(WEBHOOK_SECRET),
                        meeting_keys=TEST_KEYRING,
                        storage_url=f"sqlite:///{tmp_path}/bot.sqlite3", worker_threads=2)
    service = BotService(settings)
    service.webex.check_token = lambda: None  # type: ignore[method-assign]
    service.start()
    assert service.readiness() == []
    service.stop()
    assert service.readiness() == ["0 of 4 job threads running"]


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many threads failing many times write one line; the first write that works, another."""
    store = SqliteStore(tmp_path / "bot.sqlite3")
    caplog.set_level(logging.INFO, logger="bot.jobs.storage.health")
    store.close()  # the WAL is folded back into the file
    good = store.path.read_bytes()
    store.path.write_bytes(b"not a database" * 512)

    def fail_many_times() -> None:
        for _ in range(20):
            with pytest.raises(StoreUnavailable):
                store.accept("x", "messages", "{}")

    threads = [threading.Thread(target=fail_many_times) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.path.write_bytes(good)
    store.get("anything")  # a read alone does not end an outage
    store.accept("x", "messages", "{}")
    store.accept("y", "messages", "{}")
    messages = [record.getMessage() for record in caplog.records
                if record.name == "bot.jobs.storage.health"]
    assert [m.split(":")[0] for m in messages] == ["storage went away", "storage is back"]
