"""The job runner: threads that take accepted events from the store and hand them to the
conversation.

A worker process (``python -m bot work``) runs one, with ``WORKER_THREADS`` job threads. One more
thread, the lookout, asks the store how long until a job is claimable (a job due later, a lease
running out, a backoff ending: `Store.seconds_until_due`) and sleeps that long on the store's
wake-up (a blocking pop on Redis, a named pipe beside a SQLite file), which every accept rings
in whichever process it happens, as does a job scheduled or put back sooner than every other.
Whichever comes first, it looks again, and when a job is claimable wakes an idle thread, so an
event is processed right after its 200 and a due job at its time, even when the bot sat idle.
An idle bot so reads the queue once per job due, per ring, and at least every
``recheck_seconds`` (which finds the job of a worker process that died unwatched once its lease
has run out); the wake-up is waited on in slices of ``poll_seconds``, which read nothing. A
thread that finds a job wakes the next, so a flood is drained by every thread at once.
While a job runs, a heartbeat renews its lease, so a slow job (a long Retry-After, a slow broker)
is never claimed a second time by another process while the first is still working on it; the
same heartbeat tells the store this worker process is alive, which the web processes' readiness
reads. Every claim is held under the process's owner id: ``serve`` gives each worker process it
starts one of its own (``--owner``), and when that process dies hands its jobs back at once
(``python -m bot release-jobs``); a worker process nobody watches has a random one, and its jobs
wait for their lease to run out.

Storage may go away at any moment (a Redis restart, a full disk): no error ends a thread. A
claim that fails is tried again at the next poll; a job whose completion cannot be recorded is
waited on for half a lease, and past that left to its lease, which hands it out again once
storage is back (the outbox keeps the retry from sending anything twice).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bot.jobs.storage import Job, Store, StoreUnavailable, patiently
from bot.logs import bind
from bot.metrics import record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """One try at a job, and whether it is the last: if it fails, the job is abandoned."""

    job: Job
    last: bool


class JobRunner:
    """A pool of job threads processing jobs, each at most once per lease."""

    def __init__(
        self,
        store: Store,
        process: Callable[[Attempt], None],
        *,
        threads: int,
        lease_seconds: float,
        max_attempts: int,
        poll_seconds: float = 0.5,
        recheck_seconds: float = 30.0,
        owner: str | None = None,
    ) -> None:
        """``threads``, ``lease_seconds`` and ``max_attempts`` as the settings give them (their
        defaults are the settings'). ``poll_seconds``: the longest one wait on the store's
        wake-up lasts, and the pause after a failure (a stop is heard within it);
        ``recheck_seconds``: the longest the lookout goes without reading the queue. ``owner``:
        the id this process's claims are held under (unique per process: a release names it);
        by default one made up here."""
        self._store = store
        self._process = process
        self._threads_wanted = threads
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._recheck = recheck_seconds
        self._max_attempts = max_attempts
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        lock = threading.Lock()
        self._wake = threading.Condition(lock)  # job threads wait here for a wake-up
        self._claimed = threading.Condition(lock)  # the lookout waits here for a claim's answer
        self._empty_claims = 0  # claims that found nothing (or failed)
        self._finished = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._held: set[str] = set()
        self._held_lock = threading.Lock()

    def start(self) -> None:
        """Start the threads (once): the heartbeat first, so the process says it is alive as soon
        as it can take jobs."""
        if self._threads:
            return
        record.process_alive("worker")
        threads = [(self._renew_leases, "jobs-leases")]
        threads += [(self._run, f"jobs-{number}") for number in range(self._threads_wanted)]
        threads += [(self._look_out, "jobs-lookout")]
        for target, name in threads:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the threads to finish their current job and wait for them."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
            self._claimed.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def notify(self) -> None:
        """There may be a job to claim: wake one idle thread now rather than at the next poll."""
        with self._wake:
            self._wake_one()

    def _wake_one(self) -> None:
        """Wake one idle thread, under ``self._wake``."""
        # More wakeups than threads would only send idle threads to claim an empty queue.
        self._pending_wakeups = min(self._pending_wakeups + 1, self._threads_wanted)
        self._wake.notify()

    def running(self) -> tuple[int, int]:
        """Threads alive and threads configured (the job threads, the lookout, the heartbeat)."""
        alive = sum(thread.is_alive() for thread in self._threads)
        return alive, self._threads_wanted + 2

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until the store has no job due by now unfinished (tests, the demo): work
        scheduled for later does not count until due; False on timeout."""
        with self._finished:
            return self._finished.wait_for(lambda: self._store.backlog() == 0, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._claim_and_handle()
            except Exception:  # a defect must not silently shrink the pool
                log.exception("job thread error; it carries on")
                self._stopping.wait(self._poll)

    def _claim_and_handle(self) -> None:
        job = None
        try:
            job = self._store.claim(self._owner, self._lease)
        except StoreUnavailable:
            pass  # the store logged the outage once; the lookout looks until it is back
        finally:
            if job is None:
                with self._wake:
                    self._empty_claims += 1
                    self._claimed.notify_all()
        if job is None:
            self._idle()
            return
        self.notify()  # there may be more: a sibling looks while this thread works
        self._handle(job)

    def _idle(self) -> None:
        """Sleep until the lookout, the intake or a sibling says there may be a job."""
        with self._wake:
            self._wake.wait_for(lambda: self._pending_wakeups > 0 or self._stopping.is_set())
            self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _look_out(self) -> None:
        """Wake a thread when a job is claimable: at once when the store rings, else when the
        store says the next one comes back, and at least every ``recheck_seconds``."""
        drained = False  # the last wake-up ended with a thread finding nothing to claim
        while not self._stopping.is_set():
            try:
                due = self._store.seconds_until_due()
                if due is not None and due <= 0 and not drained:
                    drained = self._wake_a_thread()
                else:
                    # Claimable again right after the threads found nothing: wait for a ring
                    # or one slice, so a claim that is refused (its owner was released) is not
                    # tried again and again.
                    drained = False
                    self._sleep(self._poll if due is not None and due <= 0 else due)
            except StoreUnavailable:
                self._stopping.wait(self._poll)  # the store logged the outage once
            except Exception:
                log.exception("job lookout error; it carries on")
                self._stopping.wait(self._poll)

    def _sleep(self, due: float | None) -> None:
        """Wait on the store's wake-up, in slices, until it rings or ``due`` seconds (at most
        ``recheck_seconds``) pass."""
        deadline = time.monotonic() + min(self._recheck, self._recheck if due is None else due)
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._store.wait_for_work(min(left, self._poll)):
                return

    def _wake_a_thread(self) -> bool:
        """Wake one thread, then wait until a thread finds nothing to claim (a flood is
        drained by the threads waking each other, with no look from here) or
        ``recheck_seconds`` pass; True in the first case."""
        with self._wake:
            seen = self._empty_claims
            self._wake_one()
            return self._claimed.wait_for(
                lambda: self._empty_claims != seen or self._stopping.is_set(), self._recheck)

    def _handle(self, job: Job) -> None:
        with self._held_lock:
            self._held.add(job.event_id)
        try:
            self._attempt(job)
        finally:
            self._release(job)
            with self._finished:
                self._finished.notify_all()

    def _renew_leases(self) -> None:
        """Every third of a lease, say this process is alive and renew the lease of each job
        still being processed here."""
        while True:
            try:
                self._store.heartbeat(self._owner, ttl_seconds=self._lease)
                self._renew_held()
            except StoreUnavailable:
                pass  # the store logged the outage; a lease that runs out is claimed again later
            except Exception:
                log.exception("lease heartbeat error; it carries on")
            if self._stopping.wait(self._lease / 3):
                return

    def _renew_held(self) -> None:
        with self._held_lock:
            held = list(self._held)
        for event_id in held:
            # Under the lock, so no renewal lands after the job was finished or put back.
            with self._held_lock:
                if event_id not in self._held:
                    continue
                renewed = self._store.extend(event_id, self._owner, self._lease)
            if not renewed:
                log.warning("lost the lease of an event still being processed",
                            extra={"event_id": event_id})

    def _attempt(self, job: Job) -> None:
        with bind(event_id=job.event_id, kind=job.kind, attempt=job.attempts):
            if job.attempts > self._max_attempts:  # a process died during the last attempt
                log.error("giving up on an event that failed too often")
                self._give_up(job)
                return
            last = job.attempts >= self._max_attempts
            try:
                self._process(Attempt(job, last=last))
            except Exception as error:
                self._failed(job, error, last=last)
                return
            self._release(job)
            if self._record(lambda: self._store.complete(job.event_id, self._owner), "done"):
                log.info("event processed")
                record.job_done(job.due_at)

    def _failed(self, job: Job, error: Exception, *, last: bool) -> None:
        """Put a failed job back with a backoff, or give up on it after its last attempt."""
        if last:
            log.error("giving up on an event: its last attempt failed",
                      extra={"error_type": type(error).__name__}, exc_info=error)
            self._give_up(job)
            return
        retry_in = min(60.0, 2.0**job.attempts)
        extra = {"error_type": type(error).__name__, "retry_in_seconds": retry_in}
        if isinstance(error, StoreUnavailable):  # the outage is logged once, elsewhere
            log.warning("storage failed while processing; it will be retried", extra=extra)
        else:
            log.exception("processing failed; it will be retried", extra=extra)
        self._release(job)  # no renewal may undo the backoff
        record.job_retried()
        with contextlib.suppress(StoreUnavailable):  # then the lease sets the backoff
            self._store.retry_later(job.event_id, self._owner, retry_in)

    def _give_up(self, job: Job) -> None:
        self._release(job)
        if self._record(lambda: self._store.abandon(job.event_id, self._owner,
                                                    "too many attempts"), "abandoned"):
            record.job_abandoned()

    def _record(self, write: Callable[[], object], outcome: str) -> bool:
        """Record a job's end, waiting out an outage while the lease, renewed last at most a
        third of a lease ago, still keeps the job from being handed to another process."""
        try:
            patiently(write, patience=self._lease / 2)
            return True
        except StoreUnavailable:
            log.warning("could not record an event's outcome; it is retried when its lease "
                        "ends", extra={"outcome": outcome})
            return False

    def _release(self, job: Job) -> None:
        """Stop renewing the job's lease: it is about to be finished or put back."""
        with self._held_lock:
            self._held.discard(job.event_id)
