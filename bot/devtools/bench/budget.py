"""Where a sequential interaction's time goes: the steps between its upstream calls.

Each step is the time from the previous step to the sandbox recording the next call, minus the
injected latency: the bot's own work plus the emulator's answer. ``emulator_ms`` measures the
emulator alone (the broker computes real PBES2 ciphers), so the two can be told apart.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from bot.devtools.bench.phases import Outcome, request_kind, set_latency
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.journal import Recorded

ACK = "acknowledge"
REPEATS = 30


def steps_ms(outcome: Outcome, trips: Sequence[str], latency: float) -> dict[str, float]:
    """Median milliseconds of each step of interactions sent one at a time (latency removed)."""
    columns: dict[str, list[float]] = {ACK: [], **{kind: [] for kind in trips}}
    for result, answered in zip(outcome.results, outcome.answered, strict=True):
        path = [(stamp, request_kind(recorded)) for stamp, recorded in outcome.calls
                if result.sent <= stamp <= answered and request_kind(recorded) in trips]
        if [kind for _, kind in path] != list(trips):
            continue  # a person lookup or another call on the way: not a like-for-like sample
        columns[ACK].append(result.acked - result.sent)
        previous = result.acked
        for stamp, kind in path:
            columns[kind].append(stamp - previous - latency)
            previous = stamp
    return {kind: statistics.median(values) * 1000 if values else float("nan")
            for kind, values in columns.items()}


def emulator_ms(box: Sandbox, calls: Sequence[Recorded], kinds: Sequence[str],
                latency: float) -> dict[str, float]:
    """The sandbox's own mean time for each kind of call, replaying one of the bot's unloaded.

    The mean, not the median: the broker draws PBES2 iterations at random for every call.
    """
    samples: dict[str, Recorded] = {}
    for recorded in calls:
        if request_kind(recorded) in kinds:
            samples.setdefault(request_kind(recorded), recorded)
    room = box.add_room("Bench calibration", members=[])["id"]  # replayed posts land here
    set_latency(box, 0)
    try:
        return {kind: statistics.mean(_replay(box, recorded, room) for _ in range(REPEATS))
                for kind, recorded in samples.items()}
    finally:
        set_latency(box, latency)


def _replay(box: Sandbox, recorded: Recorded, room: str) -> float:
    """Send one recorded call again, straight to the sandbox; milliseconds to its answer."""
    body = None
    if isinstance(recorded.json, dict):
        payload = dict(recorded.json)
        if recorded.path == "/v1/messages":
            payload.pop("toPersonId", None)
            payload["roomId"] = room
        body = json.dumps(payload).encode("utf-8")
    parts = urlsplit(box.url)
    if parts.hostname is None:
        raise ValueError(f"no host in the sandbox URL {box.url!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Authorization": f"Bearer {box.bot_token}", "Content-Type": "application/json"}
    started = time.monotonic()
    try:
        connection.request(recorded.method, recorded.path, body=body, headers=headers)
        connection.getresponse().read()
    finally:
        connection.close()
    return (time.monotonic() - started) * 1000
