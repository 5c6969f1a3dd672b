"""The process model as deployed: ``serve`` runs gunicorn's web processes and a worker process,
keeps the worker running, and stops everything on SIGTERM; ``work`` runs workers on their own.

Each test launches real processes against the sandbox over real sockets, on SQLite and on Redis
(whose tests skip when ``redis-server`` is not installed), and judges only by what the sandbox
received.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from bot.devtools.as_deployed import LaunchedBot, children_of, launched_bot, sandbox_env
from bot.devtools.sandbox import Sandbox
from bot.supervisor import WorkerProcess
from tests.support.faults import (
    count_outcomes,
    fleet,
    kill_a_worker_mid_submit,
    poll_until,
    redis_server,
)

SECRET = "process-model-tests-secret-41c9"


@pytest.fixture(params=["sqlite", "redis"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store on each engine: a SQLite file, or a redis-server of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/bot.sqlite3"
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server(tmp_path) as url:
        yield url


def ask_for_help(box: Sandbox, name: str) -> dict[str, Any]:
    """A new person writes "help" to the bot in their 1:1 space, which is returned."""
    person = box.add_person(f"{name}@clinic.example.com", name.title())
    room = box.direct_room(person)
    box.post_message(person, room, "help")
    return room


def answered(box: Sandbox, room: dict[str, Any]) -> list[dict[str, Any]]:
    """Wait for the bot's reply in a space, and return it."""
    return box.wait_for(lambda: [m for m in box.messages_in(room)
                                 if m["personId"] == box.bot["id"]], timeout=30)


@contextlib.contextmanager
def served(seed: int, storage_url: str, tmp_path: Path, *, workers: int,
           **env: str) -> Iterator[tuple[Sandbox, LaunchedBot]]:
    """``python -m bot serve`` against a new sandbox that delivers 1:1 messages to it."""
    with Sandbox(seed=seed) as box, launched_bot(sandbox_env(box, storage_url, SECRET, **env),
                                                 workers=workers, log_dir=tmp_path) as bot:
        box.register_webhook(bot.webhook_url, SECRET, "messages", "created")
        yield box, bot


def ready(bot: LaunchedBot) -> bool:
    """Whether the web processes' /readyz says the bot is ready."""
    return requests.get(bot.url + "/readyz", timeout=5).ok


def running(pid: int) -> bool:
    """Whether a process still runs: a zombie (dead, not yet reaped by its parent) does not."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_serve_runs_web_processes_that_store_and_a_worker_process_that_answers(
    storage_url: str, tmp_path: Path
) -> None:
    with served(21, storage_url, tmp_path, workers=2) as (box, bot):
        assert answered(box, ask_for_help(box, "ada"))
        assert len(bot.web_pids()) == 2 and len(bot.worker_pids()) == 1
        # Ready once the worker process said it is alive, which it does as it starts.
        poll_until(lambda: ready(bot), timeout=30)


def test_a_worker_process_killed_is_started_again_and_loses_nothing(
    storage_url: str, tmp_path: Path
) -> None:
    with served(22, storage_url, tmp_path, workers=1) as (box, bot):
        [first] = poll_until(bot.worker_pids, timeout=30)
        os.kill(first, signal.SIGKILL)
        # Stored while no worker runs: the next worker process takes it.
        assert answered(box, ask_for_help(box, "grace"))
        [second] = poll_until(bot.worker_pids, timeout=30)
        assert second != first


def test_a_killed_worker_processs_pending_submit_is_taken_again_at_once_not_after_its_lease(
    storage_url: str, tmp_path: Path
) -> None:
    """Killed while its job waits on the broker, with a 60 s lease: the next worker process
    takes the job as soon as it runs, and the person gets one set of links."""
    with fleet(tmp_path, storage_url=storage_url, seed=26) as crew:
        submit, seconds = kill_a_worker_mid_submit(crew, "Pending form")
        assert seconds < 20, f"the links came {seconds:.1f} s after the kill"
        count_outcomes(crew, [submit]).assert_exactly_once()


def test_readiness_says_no_worker_process_soon_after_the_worker_process_is_killed(
    tmp_path: Path
) -> None:
    """The supervisor forgets the dead process's heartbeat: /readyz is 503 until the next
    worker process says it is alive (here: its start takes it about a second)."""
    with served(27, f"sqlite:///{tmp_path}/bot.sqlite3", tmp_path, workers=1) as (_, bot):
        poll_until(lambda: ready(bot), timeout=30)
        [first] = bot.worker_pids()
        os.kill(first, signal.SIGKILL)
        said = poll_until(lambda: not_ready_because(bot), timeout=5)
        assert any("no worker process has said it is alive" in problem for problem in said)
        poll_until(lambda: ready(bot), timeout=30)


def not_ready_because(bot: LaunchedBot) -> list[str]:
    """The problems /readyz names (none when ready)."""
    answer = requests.get(bot.url + "/readyz", timeout=5)
    return [] if answer.ok else list(answer.json()["problems"])


def test_serve_killed_takes_its_children_along_and_the_next_serve_gets_the_port(
    tmp_path: Path
) -> None:
    """A process manager SIGKILLs ``serve``: gunicorn's master, its web processes and the worker
    process go too, within seconds, and ``serve`` started again on the same port serves."""
    with Sandbox(seed=28) as box:
        env = sandbox_env(box, f"sqlite:///{tmp_path}/bot.sqlite3", SECRET)
        with launched_bot(env, workers=2, log_dir=tmp_path) as first:
            poll_until(lambda: len(first.web_pids()) == 2 and first.worker_pids(), timeout=30)
            children = [pid for pid in first.roles() if pid != first.process.pid]
            first.process.kill()
            first.process.wait()
            try:
                # Gone first: a web process still stopping could answer the next one's /healthz.
                poll_until(lambda: not [pid for pid in children if running(pid)], timeout=10)
                (tmp_path / "second").mkdir()
                with launched_bot(env, workers=2, log_dir=tmp_path / "second",
                                  port=urlsplit(first.url).port) as second:
                    box.register_webhook(second.webhook_url, SECRET, "messages", "created")
                    assert answered(box, ask_for_help(box, "barbara"))
                    assert "Connection in use" not in second.log_path.read_text()
            finally:  # on failure, no orphan may outlive the test
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_web_and_the_worker_processes(tmp_path: Path) -> None:
    with Sandbox(seed=23) as box:
        env = sandbox_env(box, f"sqlite:///{tmp_path}/bot.sqlite3", SECRET)
        with launched_bot(env, workers=2, log_dir=tmp_path) as bot:
            poll_until(lambda: len(bot.web_pids()) == 2 and bot.worker_pids(), timeout=30)
            children = children_of(bot.process.pid) + bot.web_pids()
            bot.process.send_signal(signal.SIGTERM)
            assert bot.process.wait(timeout=60) == 0
    assert [pid for pid in children if running(pid)] == [], "a child outlived serve"


def test_web_processes_alone_are_not_ready_until_a_worker_process_runs(
    storage_url: str, tmp_path: Path
) -> None:
    """The Procfile's split: web with WORKER_PROCESSES=0, and ``python -m bot work`` apart."""
    with served(24, storage_url, tmp_path, workers=1, WORKER_PROCESSES="0") as (box, bot):
        readiness = requests.get(bot.url + "/readyz", timeout=5)
        assert readiness.status_code == 503
        assert any("no worker process has said it is alive" in problem
                   for problem in readiness.json()["problems"])
        room = ask_for_help(box, "hedy")  # accepted: it waits for a worker
        env = sandbox_env(box, storage_url, SECRET)
        with (tmp_path / "work.log").open("wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "bot", "work"],
                                      env={**os.environ, **env}, stdout=log, stderr=log)
        try:
            answered(box, room)
            poll_until(lambda: ready(bot), timeout=30)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0


def test_serve_with_the_websocket_listens_in_the_worker_process(tmp_path: Path) -> None:
    """EVENTS=websocket under serve: the worker process holds the socket and answers; the web
    processes are ready once it is connected."""
    with Sandbox(seed=25) as box:
        env = sandbox_env(box, f"sqlite:///{tmp_path}/bot.sqlite3", SECRET,
                          EVENTS="websocket", U2C_URL=box.u2c_url)
        with launched_bot(env, workers=1, log_dir=tmp_path) as bot:
            box.wait_for(box.mercury_connected, timeout=30)
            poll_until(lambda: ready(bot), timeout=30)
            assert answered(box, ask_for_help(box, "katherine"))


def test_a_worker_process_that_keeps_dying_is_started_again_ever_more_slowly() -> None:
    """Backoff 0.5 s, 1 s, ... after quick deaths; at once after one that ran a while."""
    worker = WorkerProcess(1, [sys.executable, "-c", "raise SystemExit(3)"],
                           release_command=[sys.executable, "-c", "pass"])

    def died_by(now: float) -> None:
        assert worker.process is not None
        worker.process.wait(timeout=30)
        worker.keep_running(now)

    worker.keep_running(0.0)
    died_by(1.0)  # ran 1 s: started again 0.5 s later
    assert worker.process is None
    worker.keep_running(1.5)
    died_by(2.0)  # the second quick death: 1 s later
    worker.keep_running(2.9)
    assert worker.process is None
    worker.keep_running(3.0)
    died_by(40.0)  # ran 37 s: started again at once
    assert worker.process is not None
    worker.process.wait(timeout=30)
