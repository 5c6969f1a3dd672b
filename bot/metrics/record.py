"""Every metric the bot keeps, and the one-line hooks that count them.

Labels are small closed sets (a status, an outcome, a service, a channel, a kind of event):
never a person, a space, an address or a subject, so the number of series stays bounded
whatever people type. Names follow Prometheus' conventions: the ``icbot_`` prefix, base units
(``_seconds``), ``_total`` on counters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

from bot.errors import UpstreamError

T = TypeVar("T")

# Acceptance to done: most jobs take a second or two; a broker's Retry-After or an outage more.
DONE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)

WEBHOOKS = Counter("icbot_webhooks_total", "Webhook deliveries answered, by HTTP status and "
                   "outcome", ["status", "outcome"])
EVENTS = Counter("icbot_events_total", "Events taken into the queue, by source (webhook, "
                 "websocket) and kind (the Webex resource)", ["source", "kind"])
JOBS = Counter("icbot_jobs_total", "Jobs ended or put back, by outcome: done, retried, "
               "abandoned", ["outcome"])
DONE_AFTER = Histogram("icbot_accepted_to_done_seconds", "Time from an event's acceptance to "
                       "its job done", buckets=DONE_BUCKETS)
UPSTREAM_CALLS = Counter("icbot_upstream_calls_total", "Calls to Webex, the broker, SMTP and "
                         "Twilio (each attempt), by service and status", ["service", "status"])
UPSTREAM_SECONDS = Histogram("icbot_upstream_call_duration_seconds", "How long each call to "
                             "an upstream service took, by service", ["service"],
                             buckets=CALL_BUCKETS)
GUEST_DELIVERIES = Counter("icbot_guest_deliveries_total", "Guest links sent outside Webex, "
                           "by channel and outcome of each try: sent, unconfirmed, failed, "
                           "late (tried again later)",
                           ["channel", "outcome"])
# One listener holds the socket at a time, so the most any live process says is the answer.
WEBSOCKET_CONNECTED = Gauge("icbot_websocket_connected", "1 while the bot's websocket to Webex "
                            "is open", multiprocess_mode="livemax")
WEBSOCKET_RECONNECTS = Counter("icbot_websocket_reconnects_total", "Times the websocket closed "
                               "or failed to open and was tried again")
WEBSOCKET_FRAMES = Counter("icbot_websocket_frames_total", "Frames read from the websocket")
PROCESSES = Gauge("icbot_processes", "Processes of the bot alive, by role: web, worker",
                  ["role"], multiprocess_mode="livesum")

# Series an alert compares with zero exist from the start.
for _outcome in ("done", "retried", "abandoned"):
    JOBS.labels(_outcome)

# A refused delivery's outcome is its status (408 and 431 only the web server's own, as it reads
# the request); the others say what the acceptance decided.
_REFUSED = {400: "malformed", 401: "bad_signature", 408: "timed_out", 413: "too_large",
            431: "head_too_large"}


def webhook(status: int, outcome: str) -> None:
    """One delivery answered; ``outcome`` is the acceptance's (accepted, duplicate, busy...)
    for a 200 or a 503, and ignored for the refusals, which their status names."""
    WEBHOOKS.labels(str(status), _REFUSED.get(status) or _word(outcome)).inc()


def event(source: str, kind: str) -> None:
    """An event became a job."""
    EVENTS.labels(source, kind).inc()


def job_done(due_at: float) -> None:
    """A job was done; ``due_at`` is when it became due: its event's acceptance, or the time
    it was scheduled for (epoch seconds)."""
    JOBS.labels("done").inc()
    DONE_AFTER.observe(max(0.0, time.time() - due_at))


def job_retried() -> None:
    """A job failed and was put back for a later attempt."""
    JOBS.labels("retried").inc()


def job_abandoned() -> None:
    """A job failed its last attempt and was given up on."""
    JOBS.labels("abandoned").inc()


def upstream_call(service: str, send: Callable[[], T]) -> T:
    """Run one attempt at an upstream call, timing it and counting it by its status: ``ok``, the
    HTTP status of a failure, or what failed when there was none (``unreachable``...)."""
    started = time.monotonic()
    status = "error"  # neither an answer nor an upstream failure: a bug, said as such
    try:
        result = send()
        status = "ok"
        return result
    except UpstreamError as error:
        status = str(error.status) if error.status else _word(type(error).__name__)
        raise
    finally:
        UPSTREAM_SECONDS.labels(service).observe(time.monotonic() - started)
        UPSTREAM_CALLS.labels(service, status).inc()


def guest_delivery(channel: str, outcome: str) -> None:
    """A try at a guest's link by ``channel`` (email, sms): sent, unconfirmed, failed or late."""
    GUEST_DELIVERIES.labels(channel, outcome).inc()


def websocket_connected(connected: bool) -> None:
    """The websocket opened (True) or closed (False)."""
    WEBSOCKET_CONNECTED.set(1 if connected else 0)


def websocket_reconnect() -> None:
    """The websocket is tried again."""
    WEBSOCKET_RECONNECTS.inc()


def websocket_frame() -> None:
    """A frame came in over the websocket."""
    WEBSOCKET_FRAMES.inc()


def process_alive(role: str) -> None:
    """This process runs as ``role`` (web, worker) until it dies."""
    PROCESSES.labels(role).set(1)


def _word(text: str) -> str:
    """A label value in snake case: "too old" and "TooOld" both become too_old."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|\s+", "_", text.strip()).lower()
