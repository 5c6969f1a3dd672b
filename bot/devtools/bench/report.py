"""The benchmark's figures as a table a person reads in a terminal (the JSON is the same dict).

The engines sit side by side: each row about the bot comes once per engine, named in its label
("bot on SQLite, ...", "... (Redis)"), one right under the other; memory, one column each.
Lines stay within about 110 characters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ENGINE_NAMES = {"sqlite": "SQLite", "redis": "Redis"}
ENGINE_NOTES = {"sqlite": "SQLite in a file", "redis": "Redis on a local redis-server, AOF "
                "fsynced every second"}
LABEL = 42
CELL = 11
POINTS = ("p50", "p95", "p99")
KINDS = (("message -> form", "message"), ("submit -> links", "submit"))

Bots = Mapping[str, dict[str, Any]]  # an engine's name as shown -> the bot's figures on it


def row(label: str, cells: Sequence[object]) -> str:
    """One line: a label, then right-aligned cells (numbers to one decimal)."""
    shown = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in cells]
    return f"{label:<{LABEL}}" + "".join(f"{cell:>{CELL}}" for cell in shown)


def table(figures: dict[str, Any], settings: dict[str, Any]) -> str:
    """Every section of the report, medians of the runs."""
    bots = {ENGINE_NAMES[engine]: figures[engine] for engine in settings["engines"]}
    floor = figures["floor"]
    sections = [
        _heading(settings),
        _acks(floor["ack_ms"], bots, settings),
        _end_to_end(bots, settings),
        _steps(bots),
        _requests(bots, settings),
        _burst(bots, settings),
        _slow_clients(bots, settings),
        _idle(bots, settings),
        _throughput(bots),
        _memory(floor["memory_mib"], bots),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections)


def _heading(s: dict[str, Any]) -> list[str]:
    quick = ", quick" if s["quick"] else ""
    return [
        f"Instant Connect bot benchmark: median of {s['runs']} run(s){quick}; the bot on "
        f"{' and '.join(ENGINE_NAMES[engine] for engine in s['engines'])}",
        f"python -m bot serve: gunicorn {s['worker_class']}, {s['workers']} workers x "
        f"{s['threads']} threads,",
        f"WORKER_THREADS {s['worker_threads']}; every upstream call +{s['latency_ms']:.0f} ms; "
        f"{s['concurrency']} webhooks in flight; {s['events']} events per flood",
        f"stores: {'; '.join(ENGINE_NOTES[engine] for engine in s['engines'])}",
    ]


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _acks(floor: dict[str, float], bots: Bots, s: dict[str, Any]) -> list[str]:
    lines = [row("Webhook acknowledgement (ms)", POINTS),
             row("  floor: bare gunicorn + Flask", [floor[p] for p in POINTS])]
    measured = (("web_alone", "web processes alone"),
                ("bot", f"broker +{s['latency_ms']:.0f} ms"),
                ("bot_slow_broker", f"broker +{s['slow_broker_ms']:.0f} ms"))
    for key, what in measured:
        for name, bot in bots.items():
            acks = bot["ack_ms"]
            lines.append(row(f"  bot on {name}, {what}", [acks[key][p] for p in POINTS]))
            lines.append(row("    ratio to floor", [_ratio(acks[f"{key}_ratio"][p])
                                                    for p in POINTS]))
    return lines


def _end_to_end(bots: Bots, s: dict[str, Any]) -> list[str]:
    keys = ("p50", "p99", "floor", "emulator", "overhead_p50", "overhead_p99")
    lines = [row("End to end (ms)", ("", "", "", "", "overhead", "overhead")),
             row("", ("p50", "p99", "floor", "emulator", "p50", "p99"))]
    for label, kind in KINDS:
        for how, key in (("one at a time", f"{kind}_one_at_a_time"),
                         (f"{s['concurrency']} in flight", kind)):
            for name, bot in bots.items():
                measured = bot["end_to_end_ms"][key]
                lines.append(row(f"  {label}, {how} ({name})", [measured[k] for k in keys]))
    return [
        *lines,
        f"  floor = upstream round trips in sequence (2 and 3) x {s['latency_ms']:.0f} ms; "
        "emulator = the sandbox's own time",
        "  for those calls, measured unloaded (its broker computes real PBES2 ciphers); "
        "overhead = the rest",
    ]


def _steps(bots: Bots) -> list[str]:
    lines = [row("Where the time goes, one at a time (ms)", ("step", "emulator", "bot"))]
    first = next(iter(bots.values()))  # every engine's steps are the same
    for kind, steps in first["steps_ms"].items():
        for step in steps:
            label = step if step == "acknowledge" else f"-> {step}"
            for name, bot in bots.items():
                value, own = bot["steps_ms"][kind][step], bot["emulator_ms"].get(step, 0.0)
                lines.append(row(f"  {kind}: {label} ({name})", [value, own, value - own]))
    lines.append("  step = from the previous step to the sandbox recording the call, latency "
                 "removed; bot = step - emulator")
    return lines


def _requests(bots: Bots, s: dict[str, Any]) -> list[str]:
    keys = ("total", "necessary", "minimum", "GET people/me", "GET person", "DELETE form")
    lines = [row("Upstream requests per interaction", ("", "", "", "GET", "GET", "DELETE")),
             row("", ("in all", "necessary", "minimum", "people/me", "person", "form"))]
    for label, kind in KINDS:
        for name, bot in bots.items():
            per = bot["requests_per_interaction"][kind]
            lines.append(row(f"  {label} ({name})", [f"{per[k]:.2f}" for k in keys]))
    for name, bot in bots.items():
        lookups = bot["lookups"]
        lines.append(f"  whole lifetime of the bot on {name}: GET /people/me "
                     f"{lookups['people_me']:.0f}, GET /people/{{id}} {lookups['person']:.0f}, "
                     f"{lookups['job_processes']:.0f} job process(es)")
    lines.append(f"  (each job process fetches /people/me once, and each of the {s['people']} "
                 "people once: it caches them 10 min)")
    return lines


def _burst(bots: Bots, s: dict[str, Any]) -> list[str]:
    lines = [row(f"{s['burst']} simultaneous submits, broker +{s['burst_latency_ms']:.0f} ms",
                 ("all links", "floor", "ratio"))]
    for threads, key in ((s["worker_threads"], "as_deployed"),
                         (s["more_worker_threads"], "more_worker_threads")):
        for name, bot in bots.items():
            burst = bot["burst_ms"]
            lines.append(row(f"  bot on {name}, WORKER_THREADS {threads}",
                             [burst[key], burst["floor"], _ratio(burst[key] / burst["floor"])]))
    lines.append("  floor = one submit's round trips: action + broker + links post")
    return lines


def _slow_clients(bots: Bots, s: dict[str, Any]) -> list[str]:
    count = s["slow_clients"]
    lines = [row(f"Deliveries beside {count} slow clients (ms)",
                 (*POINTS, "answered", "opened/cut"))]
    for name, bot in bots.items():
        slow = bot["slow_clients"]
        lines += [
            row(f"  bot on {name}, alone", [slow["alone_ms"][p] for p in POINTS]),
            row(f"  bot on {name}, {count} slow clients",
                [*(slow["beside_ms"][p] for p in POINTS),
                 f"{slow['answered_beside']:.0f} of {slow['deliveries']:.0f}",
                 f"{slow['connections']:.0f}/{slow['cut']:.0f}"]),
            row("    ratio to alone", [_ratio(slow["ratio"][p]) for p in POINTS]),
        ]
    same = next(iter(bots.values()))["slow_clients"]  # the counts are every engine's
    return [
        *lines,
        "  answered: acknowledged while the slow clients were still connected "
        f"({same['deliveries']:.0f} mentions each, {s['concurrency']} in flight);",
        "  opened/cut: slow connections opened, and cut by the server (read deadline) and opened "
        "again;",
        "  a slow client sends a webhook head, then a body byte every "
        f"{same['trickle_s']:g} s, for at most {same['hold_s']:g} s",
    ]


def _idle(bots: Bots, s: dict[str, Any]) -> list[str]:
    lines = [row(f"First mention after {s['idle_s']:g} s idle (ms)", ("end to end", "overhead"))]
    for name, bot in bots.items():
        idle = bot["idle"]
        lines.append(row(f"  message -> form ({name})",
                         [idle["end_to_end_ms"], idle["overhead_ms"]]))
    lines.append("  overhead as above: end to end - floor - emulator")
    return lines


def _throughput(bots: Bots) -> list[str]:
    lines = [row("Sustained interactions per second", ("messages", "submits"))]
    for name, bot in bots.items():
        rate = bot["throughput_per_s"]
        lines.append(row(f"  bot on {name}, flood answered", [rate["messages"], rate["submits"]]))
    return lines


def _memory(floor: dict[str, Any], bots: Bots) -> list[str]:
    servers = [floor, *(bot["memory_mib"] for bot in bots.values())]
    # The bot's processes first: its tree holds every role the floor's does, and more.
    labels = dict.fromkeys(label for server in [*servers[1:], floor]
                           for label in server["per_process"])
    lines = [row("Peak resident memory, VmHWM (MiB)", ("floor", *bots))]
    for label in labels:
        lines.append(row(f"  {label}", [server["per_process"].get(label, "-")
                                        for server in servers]))
    lines.append(row("  total", [server["total"] for server in servers]))
    lines.append("  floor = bare gunicorn + Flask; "
                 f"{', '.join(bots)} = the bot as deployed (python -m bot serve) on that store")
    return lines
