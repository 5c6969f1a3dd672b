"""The fault tests' harness: bot processes, a Redis server, a process killer and the ledger.

The bot runs exactly as deployed (``python -m bot serve``: gunicorn's web processes and a worker
process) against the sandbox over real sockets. Webhooks are registered per bot instance and
switched off, so the sandbox never delivers on its own: the tests deliver each event themselves, to
an instance they pick, and redeliver as Webex would when a delivery fails. Outcomes are counted from
what the sandbox received and holds, never from the bot's own account of itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import redis

from bot.devtools.as_deployed import LaunchedBot, free_port, launched_bot, sandbox_env
from bot.devtools.sandbox import Delivery, Recorded, Sandbox
from bot.devtools.sandbox.delivery import action_event, message_event
from bot.jobs.storage import Store, open_store
from cards import inputs as ids

T = TypeVar("T")

SECRET = "fault-tests-webhook-secret-8d2e"
FIGURES_DIR = Path(__file__).resolve().parent.parent / ".fault-figures"  # tests/.fault-figures
RESOURCES = ("messages", "attachmentActions")
MAX_DELIVERIES = 12  # Webex gives up on an event long before this; so do we
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Figures ----------------------------------------------------------------------------------


def report(name: str, figures: dict[str, Any]) -> None:
    """Print one summary line and keep the figures as JSON for quoting."""
    FIGURES_DIR.mkdir(exist_ok=True)
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True))
    print(f"[{name}] " + ", ".join(f"{key}={value}" for key, value in figures.items()))


def percentile(values: Iterable[float], fraction: float) -> float:
    """The value below which ``fraction`` of the values fall (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


# Waiting on things the sandbox cannot announce ---------------------------------------------


def poll_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """Re-check process or store state until truthy; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{getattr(predicate, '__qualname__', predicate)} still false")
        time.sleep(interval)  # bounded polling of state owned by other processes


# Processes ----------------------------------------------------------------------------------


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of one process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RedisProcess:
    """A redis-server on a fixed port and folder, with AOF on: a test can stop it and start it
    again, and it comes back with what it held, as a deployed Redis does."""

    def __init__(self, workdir: Path, *options: str) -> None:
        """``options``: more redis-server arguments, which win over these defaults."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self._argv = [binary, "--port", str(free_port()), "--bind", "127.0.0.1",
                      "--dir", str(workdir), "--appendonly", "yes", "--save", "", *options]
        self._log = workdir / "redis.log"
        self._server: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self._argv[2]}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING (it has loaded its AOF by then)."""
        with self._log.open("ab") as log:
            self._server = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            poll_until(lambda: self.running and _pong(client), timeout=10)
        finally:
            client.close()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._server is not None and self._server.poll() is None

    def stop(self) -> None:
        """Shut the server down as an operator would (SIGTERM: it flushes its AOF and exits)."""
        if self._server is not None:
            self._server.terminate()
            self._server.wait(timeout=10)
            self._server = None

    def kill(self) -> None:
        """End the server at once (SIGKILL), as a crash would."""
        if self._server is not None:
            self._server.kill()
            self._server.wait(timeout=10)
            self._server = None


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on a free port (AOF on, as the bot requires); yields its URL."""
    server = RedisProcess(workdir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _pong(client: redis.Redis) -> bool:
    """Whether Redis answers PING yet."""
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.ResponseError):  # refused, or still loading its AOF
        return False


# The fleet: sandbox, bot instances, their webhooks ------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One event the test delivers and whose outcome it counts."""

    kind: str  # "help" or "submit"
    resource: str
    data: dict[str, Any]
    room_id: str
    subject: str = ""
    form_id: str = ""

    @property
    def event_id(self) -> str:
        """The id Webex dedupes by (the message or action id)."""
        return str(self.data["id"])

    @property
    def sub_digest(self) -> str:
        """What ends the meeting's ``jwt.sub``: a digest of the action id (the idempotency key)."""
        return hashlib.sha256(self.event_id.encode("utf-8")).hexdigest()[:16]


@dataclass
class Fleet:
    """A sandbox and one or more bot instances sharing one store."""

    sandbox: Sandbox
    bots: list[LaunchedBot]
    store: Store
    hooks: dict[str, list[str]]
    rng: random.Random
    people: int = 0

    @property
    def bot_id(self) -> str:
        """The bot's person id in the sandbox."""
        return str(self.sandbox.bot["id"])

    def pids(self) -> list[int]:
        """Every web and worker process of every instance."""
        return [pid for bot in self.bots for pid in bot.pids()]

    def pids_by_role(self) -> dict[str, list[int]]:
        """The web processes and the worker processes of every instance."""
        return {"web": [pid for bot in self.bots for pid in bot.web_pids()],
                "worker": [pid for bot in self.bots for pid in bot.worker_pids()]}

    def deliver(self, event: Planned) -> Delivery:
        """POST the event once, signed, to the webhook of an instance picked at random."""
        return self.sandbox.deliver(self.rng.choice(self.hooks[event.resource]), event.data)

    def deliver_until_accepted(
        self, event: Planned, *, pause: float = 0.0, deliveries: int = MAX_DELIVERIES
    ) -> list[Delivery]:
        """Deliver, and redeliver after a failure (status 0 or non-2xx) ``pause`` seconds
        later, as Webex would, at most ``deliveries`` times."""
        made = []
        for _ in range(deliveries):
            made.append(self.deliver(event))
            if 200 <= made[-1].status < 300:
                break
            time.sleep(pause)
        return made

    def deliver_all(self, events: list[Planned], threads: int = 8) -> list[list[Delivery]]:
        """Deliver every event until accepted, several at once."""
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(self.deliver_until_accepted, events))

    def wait_idle(self, timeout: float) -> None:
        """Block until the shared store holds no unfinished job."""
        poll_until(lambda: self.store.backlog() == 0, timeout)

    def new_person(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A fresh person of the bot's org and their 1:1 space with the bot."""
        self.people += 1
        person = self.sandbox.add_person(f"p{self.people}@clinic.example.com",
                                         f"Person {self.people}")
        return person, self.sandbox.direct_room(person)

    def help_event(self) -> Planned:
        """A person writes "help" in their 1:1 space (not delivered yet)."""
        person, room = self.new_person()
        message = self.sandbox.post_message(person, room, "help")
        return Planned("help", "messages", message_event(message).data, str(room["id"]))

    def forms(self, count: int, timeout: float = 60.0) -> list[tuple[dict[str, Any], str]]:
        """``count`` people each get a meeting form in their 1:1 space; (person, form id)."""
        asks = []
        for _ in range(count):
            person, room = self.new_person()
            message = self.sandbox.post_message(person, room, "new")
            asks.append((person, Planned("form", "messages", message_event(message).data,
                                         str(room["id"]))))
        accepted = self.deliver_all([ask for _, ask in asks])
        assert all(200 <= made[-1].status < 300 for made in accepted), "a form was not accepted"

        def posted() -> list[str]:
            found = [self.bot_messages(ask.room_id) for _, ask in asks]
            return [mine[0]["id"] for mine in found] if all(found) else []

        form_ids = self.sandbox.wait_for(posted, timeout)
        self.wait_idle(timeout)  # the form is recorded just after Webex shows it
        return [(person, form_id) for (person, _), form_id in zip(asks, form_ids, strict=True)]

    def submit_event(self, person: dict[str, Any], form_id: str, subject: str) -> Planned:
        """The person fills and submits their form (not delivered yet)."""
        action = self.sandbox.submit_card(person, form_id, {
            ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: subject, ids.HOSTS: "1",
            ids.GUESTS: "1", ids.SHORT_LINKS: "true", ids.VERTICAL: "gen",
            ids.HOST_LOGIN: "true", ids.VALID_FOR: "2h",
        })
        data = action_event(action).data
        return Planned("submit", "attachmentActions", data, str(action["roomId"]),
                       subject=subject, form_id=form_id)

    def bot_messages(self, room_id: str) -> list[dict[str, Any]]:
        """What the bot has in a space now (live messages), oldest first."""
        return [m for m in self.sandbox.messages_in(room_id) if m["personId"] == self.bot_id]


@contextlib.contextmanager
def fleet(
    workdir: Path,
    *,
    instances: int = 1,
    workers: int = 2,
    storage_url: str | None = None,
    seed: int = 1,
    **env: str,
) -> Iterator[Fleet]:
    """A sandbox and ``instances`` bots (``workers`` gunicorn workers each) on one store."""
    url = storage_url or f"sqlite:///{workdir}/bot.sqlite3"
    with Sandbox(seed=seed) as box, contextlib.ExitStack() as stack:
        settings = sandbox_env(box, url, SECRET, LOG_LEVEL="INFO", **env)
        bots = [stack.enter_context(launched_bot(settings, workers=workers, log_dir=workdir))
                for _ in range(instances)]
        poll_until(lambda: all(len(bot.web_pids()) == workers and len(bot.worker_pids()) == 1
                               for bot in bots), timeout=30)
        hooks: dict[str, list[str]] = {resource: [] for resource in RESOURCES}
        for bot in bots:
            for resource in RESOURCES:
                hook = box.register_webhook(bot.webhook_url, SECRET, resource, "created",
                                            name=f"{resource} {bot.url}")
                box.disable_webhook(hook)  # only the test delivers, to the instance it picks
                hooks[resource].append(str(hook["id"]))
        store = open_store(url)
        stack.callback(store.close)
        yield Fleet(box, bots, store, hooks, random.Random(seed))


def redis_url_for(base_url: str) -> str:
    """The shared Redis URL under a key prefix of its own, so tests never see each other."""
    return f"{base_url}?prefix=faults-{uuid.uuid4().hex[:8]}:"


# The killer ---------------------------------------------------------------------------------


class Killer(threading.Thread):
    """SIGKILLs a worker process and a random web process in turn, at random moments; ``serve``
    starts a new worker process, gunicorn's master a new web process.

    The moments are drawn in the bot's own activity: after a random number of requests and
    deliveries the sandbox has seen, so every kill lands while the bot is busy, wherever it is.
    """

    def __init__(
        self,
        crew: Fleet,
        processes: dict[str, int],
        rng: random.Random,
        *,
        max_kills: int,
        every: tuple[int, int] = (10, 60),
    ) -> None:
        super().__init__(name="killer", daemon=True)
        self._crew = crew
        self._processes = processes
        self._rng = rng
        self._max_kills = max_kills
        self._every = every
        self._halt = threading.Event()
        self.killed: list[str] = []  # the role of each process killed

    def _activity(self) -> int:
        """Requests received plus webhooks delivered by the sandbox so far."""
        return len(self._crew.sandbox.requests) + len(self._crew.sandbox.deliveries)

    def _busy_or_halted(self, mark: int) -> bool:
        return self._halt.is_set() or self._activity() >= mark

    def run(self) -> None:
        """Kill until told to stop or the budget is spent; only when every worker is up."""
        mark = self._activity()
        while len(self.killed) < self._max_kills and not self._halt.is_set():
            mark += self._rng.randint(*self._every)
            try:
                self._crew.sandbox.wait_for(partial(self._busy_or_halted, mark), timeout=1.0)
            except TimeoutError:
                continue  # the bot is quiet: keep waiting for it to get busy again
            pids = self._crew.pids_by_role()
            role = "worker" if len(self.killed) % 2 == 0 else "web"
            if self._halt.is_set() or len(pids[role]) < self._processes[role]:
                continue  # a replacement is still being started: let it come up
            victim = self._rng.choice(pids[role])
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
                self.killed.append(role)

    def stop(self) -> None:
        """Stop killing and wait for the thread."""
        self._halt.set()
        self.join(timeout=5)


# A worker process killed mid-job ------------------------------------------------------------

BROKER_HELD_SECONDS = 300.0  # the broker sits on the first call: the worker is killed meanwhile


def kill_a_worker_mid_submit(crew: Fleet, subject: str) -> tuple[Planned, float]:
    """A person submits a form; while the worker process that took it waits on the broker,
    SIGKILL that process. Returns the submit, once done, and the seconds from the kill to its
    links message in the person's space (the broker answers the retry at once)."""
    [(person, form_id)] = crew.forms(1)
    submit = crew.submit_event(person, form_id, subject)
    held = crew.sandbox.fail("POST", "/api/v2/joseencrypt", status=None, times=1,
                             latency=BROKER_HELD_SECONDS)
    assert 200 <= crew.deliver_until_accepted(submit)[-1].status < 300
    crew.sandbox.wait_for(lambda: held not in crew.sandbox.faults, timeout=30)
    [worker] = crew.bots[0].worker_pids()  # the broker's call taken: the worker is in it
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    crew.sandbox.wait_for(lambda: [m for m in crew.bot_messages(submit.room_id)
                                   if subject in m.get("markdown", "")], timeout=120)
    seconds = time.monotonic() - killed_at
    crew.wait_idle(30)  # the form is retired just after the links
    return submit, seconds


# Counting outcomes --------------------------------------------------------------------------


@dataclass
class Ledger:
    """Per event: how many outcomes the sandbox holds for it; lost and duplicated derive."""

    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    @property
    def lost(self) -> list[str]:
        """Events with no outcome."""
        return [event for event, count in self.counts.items() if count == 0]

    @property
    def duplicated(self) -> list[str]:
        """Events with more than one outcome."""
        return [event for event, count in self.counts.items() if count > 1]

    @property
    def outcomes(self) -> int:
        """Outcomes counted over all events."""
        return sum(self.counts.values())

    def figures(self) -> dict[str, int]:
        """The counts a report quotes."""
        return {"outcomes": self.outcomes, "lost": len(self.lost),
                "duplicated": len(self.duplicated)}

    def assert_exactly_once(self) -> None:
        """Fail naming every event lost, duplicated, answered wrongly or abandoned."""
        bad = self.lost + self.duplicated + self.wrong
        problems = [f"{event}: {self.counts.get(event)} outcomes {self.details.get(event, '')}"
                    for event in dict.fromkeys(bad)]
        if bad or self.abandoned:
            raise AssertionError(
                f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, wrong "
                f"{len(self.wrong)}, abandoned {len(self.abandoned)} of {len(self.counts)} "
                "events:\n" + "\n".join(problems + self.abandoned))


def broker_subs(calls: list[Recorded]) -> list[str]:
    """The ``jwt.sub`` of every broker call recorded."""
    bodies = [call.json if isinstance(call.json, dict) else {} for call in calls]
    return [str((body.get("jwt") or {}).get("sub", "")) for body in bodies]


def count_outcomes(crew: Fleet, events: list[Planned]) -> Ledger:
    """Count, from the sandbox, each event's outcomes: replies, links messages and meetings.

    A help message's outcome is a bot reply in the person's 1:1 space. A submit's is a links
    message in the space and one meeting: every broker call for the form must carry the one
    ``sub`` its action id implies, so two links messages or two distinct subs count twice.
    """
    ledger = Ledger(abandoned=[f"abandoned {a.job.event_id}: {a.error}"
                               for a in crew.store.abandoned()])
    subs = broker_subs(crew.sandbox.requests_matching("POST", "/api/v2/joseencrypt"))
    for event in events:
        mine = crew.bot_messages(event.room_id)
        if event.kind == "help":
            ledger.counts[event.event_id] = len(mine)
            if any("Here is what I can do" not in m.get("markdown", "") for m in mine):
                ledger.wrong.append(event.event_id)
                ledger.details[event.event_id] = f"replies: {[m.get('markdown') for m in mine]}"
            continue
        links = [m for m in mine if event.subject in m.get("markdown", "")]
        slug = event.subject.replace(" ", "-")
        meetings = Counter(sub for sub in subs if sub.startswith(slug + "-"))
        ledger.counts[event.event_id] = max(len(links), len(meetings)) if links else 0
        retired = bool((crew.sandbox.message(event.form_id) or {}).get("deleted"))
        ledger.details[event.event_id] = (
            f"links={len(links)} broker calls by sub={dict(meetings)} form retired={retired}")
        if set(meetings) - {f"{slug}-{event.sub_digest}"} or (links and not retired):
            ledger.wrong.append(event.event_id)
    return ledger


def broker_calls_per_meeting(crew: Fleet) -> int:
    """The most broker calls any one ``sub`` received (1 when no meeting was asked twice)."""
    subs = Counter(broker_subs(crew.sandbox.requests_matching("POST", "/api/v2/joseencrypt")))
    return max(subs.values(), default=0)


def requests_for_room(box: Sandbox, method: str, path: str, room_id: str) -> list[Recorded]:
    """Recorded requests whose JSON body names this space."""
    return [r for r in box.requests_matching(method, path)
            if isinstance(r.json, dict) and r.json.get("roomId") == room_id]


def log_lines(bots: list[LaunchedBot], needle: str) -> int:
    """How many log lines of the instances mention ``needle``."""
    return sum(bot.log_path.read_text(errors="replace").count(needle) for bot in bots)
