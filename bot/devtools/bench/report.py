"""The benchmark's figures as a table a person reads in a terminal (the JSON is the same dict)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LABEL = 40
CELL = 14


def row(label: str, cells: Sequence[object]) -> str:
    """One line: a label, then right-aligned cells (numbers to one decimal)."""
    shown = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells]
    return f"{label:<{LABEL}}" + "".join(f"{cell:>{CELL}}" for cell in shown)


def table(figures: dict[str, Any], settings: dict[str, Any]) -> str:
    """Every section of the report, medians of the runs."""
    return "\n".join([
        *_heading(settings), "",
        *_acks(figures["ack_ms"], settings), "",
        *_end_to_end(figures["end_to_end_ms"], settings), "",
        *_steps(figures["steps_ms"], figures["emulator_ms"]), "",
        *_requests(figures["requests_per_interaction"], figures["lookups"], settings), "",
        *_burst(figures["burst_ms"], settings), "",
        *_slow_clients(figures["slow_clients"], settings), "",
        *_idle(figures["idle"], settings), "",
        *_throughput(figures["throughput_per_s"]), "",
        *_memory(figures["memory_mib"]),
    ])


def _heading(s: dict[str, Any]) -> list[str]:
    return [
        f"Instant Connect bot benchmark: median of {s['runs']} run(s)",
        f"python -m bot serve: gunicorn {s.get('worker_class', 'gthread')}, "
        f"{s['web_concurrency']} workers x "
        f"{s['web_threads']} threads, WORKER_THREADS {s['worker_threads']}; every upstream "
        f"call +{s['latency_ms']:.0f} ms; {s['concurrency']} webhooks in flight; "
        f"{s['events']} events per flood",
    ]


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _acks(acks: dict[str, Any], s: dict[str, Any]) -> list[str]:
    points = ("p50", "p95", "p99")
    return [
        row("Webhook acknowledgement (ms)", points),
        row("  floor: bare gunicorn + Flask", [acks["floor"][p] for p in points]),
        row(f"  bot, broker +{s['latency_ms']:.0f} ms", [acks["bot"][p] for p in points]),
        row("    ratio to floor", [_ratio(acks["bot_ratio"][p]) for p in points]),
        row(f"  bot, broker +{s['slow_broker_ms']:.0f} ms",
            [acks["bot_slow_broker"][p] for p in points]),
        row("    ratio to floor", [_ratio(acks["bot_slow_broker_ratio"][p]) for p in points]),
    ]


def _end_to_end(e2e: dict[str, Any], s: dict[str, Any]) -> list[str]:
    columns = ("p50", "p99", "floor", "emulator", "overhead p50", "overhead p99")
    keys = ("p50", "p99", "floor", "emulator", "overhead_p50", "overhead_p99")
    rows = [("message -> form", "message"), ("submit -> links", "submit")]
    lines = [row("End to end (ms)", columns)]
    for label, kind in rows:
        lines.append(row(f"  {label}, one at a time", [e2e[f"{kind}_one_at_a_time"][k]
                                                       for k in keys]))
        lines.append(row(f"  {label}, {s['concurrency']} in flight", [e2e[kind][k]
                                                                       for k in keys]))
    return [
        *lines,
        f"  floor = upstream round trips in sequence (2 and 3) x {s['latency_ms']:.0f} ms; "
        "emulator = the sandbox's own time for",
        "  those calls, measured unloaded (its broker computes real PBES2 ciphers); "
        "overhead = the rest",
    ]


def _steps(steps: dict[str, Any], emulator: dict[str, Any]) -> list[str]:
    lines = [row("Where the time goes, one at a time (ms)", ("step", "emulator", "bot"))]
    for kind, measured in steps.items():
        for step, value in measured.items():
            own = emulator.get(step, 0.0)
            label = step if step == "acknowledge" else f"-> {step}"
            lines.append(row(f"  {kind}: {label}", [value, own, value - own]))
    lines.append("  step = from the previous step to the sandbox recording the call, latency "
                 "removed; bot = step - emulator")
    return lines


def _requests(per: dict[str, Any], lookups: dict[str, Any], s: dict[str, Any]) -> list[str]:
    columns = ("in all", "necessary", "minimum", "people/me", "person", "DELETE form")
    keys = ("total", "necessary", "minimum", "GET people/me", "GET person", "DELETE form")
    return [
        row("Upstream requests per interaction", columns),
        row("  message -> form", [f"{per['message'][k]:.2f}" for k in keys]),
        row("  submit -> links", [f"{per['submit'][k]:.2f}" for k in keys]),
        f"  whole bot lifetime: GET /people/me {lookups['people_me']:.0f} (once per process), "
        f"GET /people/{{id}} {lookups['person']:.0f} (cached 10 min per process: "
        f"{s['people']} people x {s['web_concurrency']} processes = "
        f"{s['people'] * s['web_concurrency']} if each is fetched once)",
    ]


def _burst(burst: dict[str, Any], s: dict[str, Any]) -> list[str]:
    total = s["web_concurrency"]
    return [
        row(f"{s['burst']} simultaneous submits, broker +{s['burst_broker_ms']:.0f} ms",
            ("all links", "floor", "ratio")),
        row(f"  WORKER_THREADS {s['worker_threads']} ({s['worker_threads'] * total} threads)",
            [burst["as_deployed"], burst["floor"],
             _ratio(burst["as_deployed"] / burst["floor"])]),
        row(f"  WORKER_THREADS {s['more_worker_threads']} "
            f"({s['more_worker_threads'] * total} threads)",
            [burst["more_worker_threads"], burst["floor"],
             _ratio(burst["more_worker_threads"] / burst["floor"])]),
        "  floor = one submit's round trips: action + broker + links post",
    ]


def _slow_clients(slow: dict[str, Any], s: dict[str, Any]) -> list[str]:
    points = ("p50", "p95", "p99")
    count = s["slow_clients"]
    return [
        row(f"Deliveries beside {count} slow clients (ms)", points),
        row("  acknowledgement, alone", [slow["alone_ms"][p] for p in points]),
        row(f"  acknowledgement, {count} slow clients", [slow["beside_ms"][p] for p in points]),
        row("    ratio to alone", [_ratio(slow["ratio"][p]) for p in points]),
        f"  answered while the slow clients were still connected: "
        f"{slow['answered_beside']:.0f} of {slow['deliveries']:.0f}",
        f"  {slow['deliveries']:.0f} mentions each, {s['concurrency']} in flight; a slow client "
        f"sends a webhook head, then a body byte every {slow['trickle_s']:g} s, for at most "
        f"{slow['hold_s']:g} s;",
        f"  {slow['connections']:.0f} slow connections opened, {slow['cut']:.0f} cut by the "
        "server (read deadline) and opened again",
    ]


def _idle(idle: dict[str, Any], s: dict[str, Any]) -> list[str]:
    return [
        row(f"First mention after {s['idle_s']:g} s idle (ms)", ("end to end", "overhead")),
        row("  message -> form", [idle["end_to_end_ms"], idle["overhead_ms"]]),
        "  overhead as above: end to end - floor - emulator",
    ]


def _throughput(rate: dict[str, Any]) -> list[str]:
    return [
        row("Sustained interactions per second", ("messages", "submits")),
        row("  flood, answered per second", [rate["messages"], rate["submits"]]),
    ]


def _memory(memory: dict[str, Any]) -> list[str]:
    workers = max(len(memory["bot"]["workers"]), len(memory["floor"]["workers"]))
    columns = ("master", *(f"worker {n + 1}" for n in range(workers)))
    return [
        row("Peak resident memory, VmHWM (MiB)", columns),
        row("  bot", [memory["bot"]["master"], *memory["bot"]["workers"]]),
        row("  floor: bare gunicorn + Flask", [memory["floor"]["master"],
                                               *memory["floor"]["workers"]]),
    ]
