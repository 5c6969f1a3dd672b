"""The command line: ``python -m bot <command>``.

``demo`` plays a conversation offline; ``serve`` runs the whole bot: gunicorn's web processes
and the worker processes; ``work`` runs one worker process (for a Procfile that scales them
apart); ``listen`` runs one without a web server, its events over a websocket (no public URL
needed); ``webhooks sync`` and ``webhooks list`` manage its webhooks; ``new-key`` prints a key
for MEETING_KEYS; ``abandoned`` lists the events it gave up on; ``audit`` prints the audit
trail of the meetings; ``links`` prints meeting links without any chat; ``sandbox`` runs the
local Webex and broker emulator; ``cards`` renders every card to PNG. ``python -m bot`` alone
lists them, and each one's ``--help`` names the settings it reads. Bad arguments and settings
exit 2 with one line on stderr; upstream failures exit 1 with the explanation.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TextIO

from bot import logs, supervisor
from bot.conversation.plan import link_window, validity
from bot.conversation.timewindow import (
    clock_change_notice,
    describe_window,
    parse_duration,
    zone,
)
from bot.errors import InvalidRequest, UpstreamError
from bot.jobs.storage import StoreUnavailable, open_store, redact_url
from bot.jobs.storage.contract import sqlite_path_from_url, url_scheme
from bot.limits import DEFAULT_VALID_FOR, VALIDITY_RANGE
from bot.listen.listener import release_lease_of
from bot.meetings.book import AuditRow, audit_trail
from bot.meetings.sealing import new_key
from bot.metrics import scrape
from bot.service import BotService, check_port, check_token, preflight
from bot.settings import Settings, SettingsError, share_metrics, storage_url
from bot.upstream.instant_connect import (
    InstantConnectClient,
    MeetingLinks,
    MeetingRequest,
    unique_sub,
)
from bot.upstream.instant_connect.request import ENCS, JWE_ALGS, JWS_ALGS, VERTICALS
from bot.upstream.webex import WebexClient
from bot.upstream.webhook_sync import describe, sync

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad argument: one line on stderr and exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose complaints are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# What each command reads from the environment, for its --help. serve, work and listen check
# every setting of the README's table; these are the ones that decide what they do.
RUNNING = ("WEBEX_BOT_TOKEN", "MEETING_KEYS", "STORAGE_URL", "EVENTS", "LOG_LEVEL")
WORKING = (*RUNNING, "WORKER_THREADS", "JOB_LEASE_SECONDS", "MAX_ATTEMPTS", "U2C_URL",
           "DEVICE_CATALOG", "DEFAULT_TIMEZONE", "DEFAULT_VALID_FOR", "SMTP_URL",
           "TWILIO_ACCOUNT_SID")
SERVING = (*RUNNING, "WEBHOOK_SECRET", "HOST", "PORT", "WEB_CONCURRENCY", "WEB_THREADS",
           "WORKER_PROCESSES", "MAX_BODY_BYTES", "MAX_BACKLOG")
ALL_OTHERS = "and every other setting of the README's table, checked at start"


def _reads(*names: str, rest: str = "") -> str:
    """The epilog naming the settings a command reads."""
    if not names:
        return "settings: none (it reads no environment variable)"
    return f"settings: {', '.join(names)}" + (f"; {rest}" if rest else "")


class _Commands:
    """Adds the subcommands, each with one line of summary (for ``python -m bot`` alone), a
    description of what it does, and the settings it reads (its --help)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._group = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                            metavar="command")
        self.summaries: dict[str, str] = {}

    def add(self, name: str, summary: str, description: str = "",
            reads: str = _reads(), **options: Any) -> argparse.ArgumentParser:
        self.summaries[name] = summary
        return self._group.add_parser(
            name, help=summary, description=f"{summary[:1].upper()}{summary[1:]}. {description}",
            epilog=reads, **options)


def build_parser() -> argparse.ArgumentParser:
    """Every command and option, with the help a newcomer needs."""
    parser = _Parser(prog="python -m bot", description="The Webex Instant Connect bot.")
    commands = _Commands(parser)
    parser.set_defaults(summaries=commands.summaries)

    links = commands.add(
        "links", "print Instant Connect links for one meeting",
        "No chat needed: the broker is called directly, with --sandbox the local one.",
        _reads("WEBEX_BOT_TOKEN", "IC_BROKER_URL", "IC_AUDIENCE", "DEFAULT_TIMEZONE",
               "DEFAULT_VALID_FOR", "LOG_LEVEL", rest="with --sandbox no token"))
    links.add_argument("--subject", required=True, help="what the meeting is about")
    links.add_argument("--hosts", type=int, help="host links, 0 to 25 (broker default 1)")
    links.add_argument("--guests", type=int, help="guest links, 0 to 25 (broker default 1)")
    links.add_argument("--device", action="append", default=[], metavar="SIP_URI",
                       help="a video device to dial in (repeatable)")
    links.add_argument("--short", action="store_true", help="also make short URLs")
    links.add_argument("--vertical", choices=VERTICALS, help="gen (general) or hc (healthcare)")
    links.add_argument("--no-host-login", action="store_true",
                       help="short host links without the sign-in option")
    links.add_argument("--start", help='when the links start working, "YYYY-MM-DD HH:MM"')
    links.add_argument("--timezone", help="zone of --start (default DEFAULT_TIMEZONE or UTC)")
    links.add_argument("--valid-for", help="how long the links work, e.g. 30m, 3h, 7d "
                       f"(default DEFAULT_VALID_FOR, {DEFAULT_VALID_FOR} unless set)")
    links.add_argument("--key", help="idempotency key: the same key gives the same meeting")
    links.add_argument("--jwe-alg", choices=JWE_ALGS)
    links.add_argument("--enc", choices=ENCS)
    links.add_argument("--jws-alg", choices=JWS_ALGS)
    links.add_argument("--salt-length", type=int, help="8 to 128")
    links.add_argument("--iterations", type=int, help="1000 to 32767")
    links.add_argument("--json", action="store_true", help="print JSON instead of text")
    links.add_argument("--sandbox", action="store_true",
                       help="use the local sandbox broker instead of Webex (works offline)")

    # sandbox and cards pass their options through to their own parsers (and their --help).
    sandbox = commands.add("sandbox", "run the local Webex, broker, SMTP and Twilio emulator",
                           add_help=False)
    sandbox.add_argument("rest", nargs=argparse.REMAINDER)
    cards = commands.add("cards", "render every card the bot sends to PNG (Chromium, npm)",
                         add_help=False)
    cards.add_argument("rest", nargs=argparse.REMAINDER)

    demo = commands.add("demo", "play a whole conversation offline (no account)",
                        "The bot runs in this process against the sandbox; what each person "
                        "and guest sees is printed.")
    demo.add_argument("--interactive", action="store_true",
                      help="type the messages and fill the form yourself")
    demo.add_argument("--mail-dir", type=Path, metavar="DIR",
                      help="write every email the guests received to DIR as .eml files")
    demo.add_argument("--events", choices=("webhooks", "websocket"), default="webhooks",
                      help="how the bot hears Webex: signed webhooks (default) or the websocket")
    commands.add(
        "serve", "run the whole bot: gunicorn's web processes and the worker processes",
        "It first checks the settings, the store, the port and the token (GET /people/me): a "
        "mistake is one line naming the setting, exit 2. A worker process that dies is started "
        "again; one that exits 2 (a token Webex refuses) stops everything, exit 2.",
        _reads(*SERVING, "U2C_URL", rest=ALL_OTHERS))
    working = commands.add(
        "work", "run one worker process: the stored jobs (and the websocket, by EVENTS)",
        "For a Procfile that scales web and worker processes apart; serve runs WORKER_PROCESSES "
        "of them itself. It first checks the settings, the store and the token: a mistake is "
        "one line naming the setting, exit 2.",
        _reads(*WORKING, rest=ALL_OTHERS))
    working.add_argument("--owner", help="the id its claims are held under (serve gives one, "
                         "and hands that id's jobs back when the process dies); default: a new one")
    commands.add(
        "listen", "run the bot on a websocket to Webex: no public URL, no web server",
        "A worker process with EVENTS=websocket (one per bot); no WEBHOOK_SECRET needed. It "
        "first checks the settings, the store and the token: a mistake is one line naming the "
        "setting, exit 2.", _reads(*(name for name in WORKING if name != "EVENTS"), "HTTPS_PROXY",
                          "CATCH_UP_WINDOW", rest=ALL_OTHERS))
    commands.add(
        "abandoned", "list the events the bot gave up on (after MAX_ATTEMPTS)",
        "Newest first, with why, never their content. It reads the store alone (no token), "
        "and prints which store it read: a relative sqlite:/// path is read from the current "
        "directory.", _reads("STORAGE_URL"))
    audit = commands.add(
        "audit", "print the audit trail: who did what to which meeting, and when",
        "One row per thing done, oldest first: time (UTC), meeting id, who (the person's "
        "email), where (the space id), what, detail. No link and no subject; guests' contacts "
        "masked. It reads the store alone (no token, no key); which store and how many rows go "
        "to stderr, so stdout is the export alone.", _reads("STORAGE_URL"))
    audit.add_argument("--since", type=_duration, default=AUDIT_SINCE, metavar="DURATION",
                       help=f"how far back, e.g. 12h, 30d, 365d (default {AUDIT_SINCE})")
    audit.add_argument("--format", choices=("csv", "json"), default="csv",
                       help="CSV with a header row (default), or a JSON list of objects")
    release = commands.add(
        "release-jobs", "hand a dead worker process's jobs back at once",
        "serve does it when one of its worker processes dies; the jobs' leases run out anyway.",
        _reads("WEBEX_BOT_TOKEN", "STORAGE_URL", "LOG_LEVEL"))
    release.add_argument("owner", help="the dead process's owner id (its --owner)")
    commands.add(
        "new-key", "print a fresh random key for MEETING_KEYS",
        "The key encrypts what the bot keeps of each meeting (guests' contacts, links); serve, "
        "work and listen need one. To rotate: put the new key first in MEETING_KEYS and keep "
        "the old ones after it, comma-separated, while meetings sealed with them are kept.")

    from bot.devtools.bench.options import FULL_RUN, STORE_CHOICES

    # The counts default to None, so that --quick can pick its own and one given still wins;
    # the help gives a full run's.
    bench = commands.add("bench", "measure the bot under gunicorn against the sandbox",
                         "Prints the tables of the README's Performance section.")
    bench.add_argument("--store", choices=STORE_CHOICES, default="both",
                       help="the bot's store: a SQLite file, a redis-server the benchmark runs, "
                       "or both side by side (default both)")
    bench.add_argument("--quick", action="store_true",
                       help="a short run with smaller counts, every row still measured (under a "
                       "minute on two cores); counts given here still win")
    bench.add_argument("--runs", type=_positive,
                       help=f"runs; medians are reported (default {FULL_RUN.runs})")
    bench.add_argument("--latency", dest="latency_ms", type=_milliseconds, metavar="MS",
                       help=f"added to every upstream call (default {FULL_RUN.latency_ms:g})")
    bench.add_argument("--concurrency", type=_positive,
                       help=f"webhooks in flight at once (default {FULL_RUN.concurrency})")
    bench.add_argument("--events", type=_positive,
                       help=f"mentions and submits per flood (default {FULL_RUN.events})")
    bench.add_argument("--slow-broker", dest="slow_broker_ms", type=_milliseconds, metavar="MS",
                       help="broker latency while acknowledgements are measured "
                       f"(default {FULL_RUN.slow_broker_ms:g})")
    bench.add_argument("--burst", type=_positive,
                       help=f"simultaneous submits (default {FULL_RUN.burst})")
    bench.add_argument("--burst-latency", dest="burst_latency_ms", type=_milliseconds,
                       metavar="MS", help="broker latency during the burst "
                       f"(default {FULL_RUN.burst_latency_ms:g})")
    bench.add_argument("--idle", dest="idle_s", type=float, metavar="SECONDS",
                       help="how long the bot sits idle before the last event "
                       f"(default {FULL_RUN.idle_s:g})")
    bench.add_argument("--workers", type=_positive,
                       help=f"WEB_CONCURRENCY (default {FULL_RUN.workers})")
    bench.add_argument("--threads", type=_positive,
                       help=f"WEB_THREADS (default {FULL_RUN.threads})")
    bench.add_argument("--worker-threads", type=_positive,
                       help="WORKER_THREADS of the bot as deployed "
                       f"(default {FULL_RUN.worker_threads})")
    bench.add_argument("--more-worker-threads", type=_positive,
                       help="WORKER_THREADS for the second burst "
                       f"(default {FULL_RUN.more_worker_threads})")
    bench.add_argument("--people", type=_positive,
                       help=f"distinct people sending the events (default {FULL_RUN.people})")
    bench.add_argument("--slow-clients", type=_positive,
                       help="clients trickling a body a byte a second "
                       f"(default {FULL_RUN.slow_clients})")
    bench.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")

    webhooks = commands.add(
        "webhooks", "manage the bot's Webex webhooks", "sync creates or repairs exactly the "
        "bot's own webhooks; list shows them.",
        _reads("WEBEX_BOT_TOKEN", "WEBEX_API_URL", "PUBLIC_URL", "WEBHOOK_PATH",
               "WEBHOOK_SECRET", "LOG_LEVEL"))
    actions = webhooks.add_subparsers(dest="action", required=True, parser_class=_Parser)
    sync = actions.add_parser(
        "sync", help="create or repair exactly the bot's own webhooks",
        description="Create or repair exactly the bot's own webhooks (messages, card submits, "
        "memberships), pointing at PUBLIC_URL + WEBHOOK_PATH and signed with WEBHOOK_SECRET.",
        epilog=_reads("WEBEX_BOT_TOKEN", "WEBEX_API_URL", "PUBLIC_URL", "WEBHOOK_PATH",
                      "WEBHOOK_SECRET", "LOG_LEVEL"))
    sync.add_argument("--url", help="public URL of the webhook endpoint "
                      "(default PUBLIC_URL + WEBHOOK_PATH)")
    actions.add_parser("list", help="show the webhooks the bot token can see",
                       description="Show the webhooks the bot's token can see.",
                       epilog=_reads("WEBEX_BOT_TOKEN", "WEBEX_API_URL", "LOG_LEVEL"))
    return parser


def _positive(text: str) -> int:
    """A whole number of at least 1, for counts on the command line."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return number


def _duration(text: str) -> timedelta:
    """A duration as the settings take it: 30m, 12h, 30d."""
    duration = parse_duration(text)
    if duration is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 12h or 30d")
    return duration


def _milliseconds(text: str) -> float:
    """A latency in milliseconds, zero or more."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from None
    if not 0 <= number < 600_000:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 600000 ms")
    return number


def command_list() -> str:
    """What ``python -m bot`` alone prints: every command, one line each."""
    summaries = build_parser().get_default("summaries")
    width = max(map(len, summaries))
    lines = ["The Webex Instant Connect bot. Usage: python -m bot <command> [options]",
             "(python -m bot <command> --help says what it does and which settings it reads)", ""]
    return "\n".join([*lines, *(f"  {name:<{width}}  {summary}"
                                for name, summary in summaries.items())])


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(command_list())
        return 0
    if argv[:1] == ["sandbox"]:  # its options are the sandbox's own, passed through untouched
        from bot.devtools.sandbox.cli import main as sandbox_main

        return sandbox_main(argv[1:])
    if argv[:1] == ["cards"]:  # the same for the card renderer's
        from bot.devtools.card_render import main as cards_main

        return cards_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if args.command == "demo":
            from bot.devtools.demo import run_demo

            return run_demo(sys.stdout, sys.stdin if args.interactive else None,
                            mail_dir=args.mail_dir, events=args.events)
        if args.command == "serve":
            return serve()
        if args.command == "work":
            return work(owner=args.owner)
        if args.command == "listen":  # this process has no webhook endpoint: the websocket
            return work(events="websocket")
        if args.command == "bench":
            from bot.devtools.bench.run import main as bench_main

            return bench_main(args)
        if args.command == "webhooks":
            return run_webhooks(args, Settings.from_env())
        if args.command == "release-jobs":
            return release_jobs(Settings.from_env(), args.owner)
        if args.command == "abandoned":
            return list_abandoned(storage_url())
        if args.command == "audit":
            return export_audit(storage_url(), args.since, args.format)
        if args.command == "new-key":
            return print_new_key()
        return run_links(args)
    except (UsageError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except UpstreamError as error:
        print(f"error: {error.describe()}", file=sys.stderr)
        return 1


def serve() -> int:
    """Check every setting and the store, then become the supervisor of gunicorn serving
    ``bot.web.wsgi`` and of WORKER_PROCESSES worker processes (with none, become gunicorn)."""
    settings = Settings.from_env()
    settings.require_webhook_secret()
    settings.require_meeting_keys()
    logs.configure(settings.log_level or "INFO", settings.secret_values())
    check_start(settings, port=True)
    if settings.server.metrics_port:
        share_metrics(settings.server)
    argv = settings.server.gunicorn_command("bot.web.wsgi:app")
    if settings.server.worker_processes:
        argv = supervisor.command(argv, settings.server.worker_processes,
                                  settings.log_level or "INFO")
    os.execvp(argv[0], argv)
    return 1  # execvp only returns by raising


def work(events: str | None = None, owner: str | None = None) -> int:
    """Run the job threads (and, when events come over the websocket, the listener) until
    SIGTERM or Ctrl-C; ``events`` overrides EVENTS; ``owner`` names the claims. A token Webex
    refuses at start-up is a SettingsError (one line, exit 2), not a network problem to retry."""
    settings = Settings.from_env()
    settings.require_meeting_keys()
    if events is not None:
        settings = replace(settings, events=events)
    logs.configure(settings.log_level or "INFO", settings.secret_values())
    stopping = threading.Event()  # a signal during the checks stops the process once they end
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    check_start(settings, port=False)
    service = BotService(settings, role="worker", worker_owner=owner)
    if settings.server.metrics_port and not scrape.shared():  # else serve's web processes answer
        serve_metrics_alone(settings, service)
    service.start()
    try:
        stopping.wait()
    finally:
        log.info("stopping: " + ("closing the websocket, " if service.listener else "")
                 + "letting the workers finish")
        service.stop()
    return 0


def check_start(settings: Settings, *, port: bool) -> None:
    """What only trying can tell, before anything starts: the store and the catalog
    (:func:`preflight`), the port when this process will listen on it, and the token; a mistake
    is a SettingsError, anything worth knowing is logged once."""
    warnings = preflight(settings)
    if port:
        check_port(settings.server)
    for warning in warnings + check_token(settings):
        log.warning(warning)


def serve_metrics_alone(settings: Settings, service: BotService) -> None:
    """``work`` or ``listen`` on its own answers its scrapes on METRICS_PORT itself."""
    server = settings.server
    host = server.metrics_host or server.host
    try:
        scrape.serve_alone(host, server.metrics_port, service.store)
    except OSError as error:
        raise SettingsError(f"METRICS_PORT: cannot listen on {host} port {server.metrics_port} "
                            f"({error.strerror}); set another, or 0 for no metrics") from None


def print_new_key() -> int:
    """A fresh key on stdout, and how to rotate on stderr (so ``$(...)`` takes the key alone)."""
    print(new_key())
    print("To rotate: put the new key first in MEETING_KEYS and keep the old ones after it, "
          "comma-separated, until the meetings they sealed are gone.", file=sys.stderr)
    return 0


def release_jobs(settings: Settings, owner: str) -> int:
    """Make a dead worker process's claims claimable now, forget its heartbeat (see
    ``Store.release``) and free the websocket if its listener held it; exit 1 when the store
    cannot be reached (the leases still run out)."""
    logs.configure(settings.log_level or "INFO", settings.secret_values())
    store = open_store(settings.storage_url)
    try:
        released = store.release(owner)
        release_lease_of(store, owner)
    except StoreUnavailable:  # the store logged why
        return 1
    finally:
        store.close()
    log.info("jobs of a dead worker process handed back", extra={"owner": owner,
                                                                 "jobs": released})
    return 0


def list_abandoned(url: str) -> int:
    """Print which store was read, then the events that failed every attempt, newest first,
    with why (no message content), or "none"; exit 1 when the store cannot be read."""
    url, where = _existing_store(url)
    store = open_store(url)
    try:
        parked = store.abandoned()
    except StoreUnavailable as error:
        print(f"error: cannot read the store at {where}: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"abandoned events in {where}: " + (f"{len(parked)}, newest first" if parked
                                               else "none"))
    for job in parked:
        when = datetime.fromtimestamp(job.abandoned_at).isoformat(timespec="seconds")
        print(f"{when}  {job.job.kind:<18} attempts {job.job.attempts}  "
              f"{job.job.event_id}  {job.error}")
    return 0


AUDIT_SINCE = "30d"
AUDIT_COLUMNS = ("time", "meeting", "who", "where", "what", "detail")


def export_audit(url: str, since: timedelta, form: str) -> int:
    """Print the audit rows of the last ``since``, oldest first, as CSV or JSON on stdout, and
    which store was read and how many rows on stderr; exit 1 when the store cannot be read."""
    url, where = _existing_store(url)
    start = time.time() - since.total_seconds()
    try:
        with contextlib.closing(open_store(url)) as store:
            written = write_audit(audit_trail(store, start), form, sys.stdout)
    except StoreUnavailable as error:
        print(f"error: cannot read the store at {where}: {error}", file=sys.stderr)
        return 1
    print(f"audit trail in {where} since {_utc(start)}: {written} rows", file=sys.stderr)
    return 0


def write_audit(rows: Iterable[AuditRow], form: str, out: TextIO) -> int:
    """Write the rows as they come (a year of them is never held whole); return how many. JSON
    is one list, an object a line, which any JSON reader takes whole and a person reads."""
    count = 0
    if form == "csv":
        writer = csv.writer(out)
        writer.writerow(AUDIT_COLUMNS)
        for row in rows:
            writer.writerow(_audit_fields(row))
            count += 1
        return count
    out.write("[")
    for count, row in enumerate(rows, 1):
        fields = dict(zip(AUDIT_COLUMNS, _audit_fields(row), strict=True))
        out.write(("\n" if count == 1 else ",\n") + json.dumps(fields, ensure_ascii=False))
    out.write("\n]\n" if count else "]\n")
    return count


def _audit_fields(row: AuditRow) -> tuple[str, ...]:
    return (_utc(row.at), row.meeting, row.who, row.where, row.what, row.detail)


def _utc(at: float) -> str:
    """ISO 8601 in UTC, to the second: 2027-01-15T08:00:00Z."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _existing_store(url: str) -> tuple[str, str]:
    """The store URL with a SQLite path made absolute, and where it is, to print; a SQLite
    file that does not exist is a SettingsError (opening it would create an empty store)."""
    if url_scheme(url) != "sqlite":
        return url, redact_url(url)
    path = Path(sqlite_path_from_url(url)).resolve()
    if not path.is_file():
        raise SettingsError(f"STORAGE_URL: there is no store at {path} (a relative "
                            "sqlite:/// path is read from the directory the command runs in)")
    return f"sqlite:///{path}", str(path)


def run_webhooks(args: argparse.Namespace, settings: Settings) -> int:
    """``webhooks sync`` and ``webhooks list``."""
    logs.configure(settings.log_level or "WARNING", settings.secret_values())
    webex = WebexClient(settings.bot_token, settings.webex_base_url, retry=settings.retry,
                        timeout=settings.webex_timeout)
    if args.action == "list":
        for hook in webex.webhooks():
            print(describe(hook))
        return 0
    target = args.url or (
        settings.public_url.rstrip("/") + settings.webhook_path if settings.public_url else None
    )
    if not target:
        raise UsageError("give --url https://your-host/webhooks or set PUBLIC_URL")
    if settings.webhook_secret is None:
        raise UsageError("set WEBHOOK_SECRET: the bot's webhooks must be signed")
    for line in sync(webex, target, settings.webhook_secret).lines():
        print(line)
    return 0


def run_links(args: argparse.Namespace) -> int:
    """The ``links`` command: build the request, call the broker, print the links."""
    with _settings(args.sandbox) as settings:
        tz = zone(args.timezone, settings.default_timezone)
        if args.timezone and str(tz) != args.timezone:
            raise UsageError(f"--timezone: unknown time zone {args.timezone!r}")
        request = links_request(args, tz, time.time(), settings.default_valid_for)
        start = typed_start(args, tz)
        notice = clock_change_notice(start) if start else None
        if notice:
            print(f"note: {notice}", file=sys.stderr)
        client = InstantConnectClient(settings.bot_token, settings.instant_connect)
        try:
            links = client.create_links(request)
        except InvalidRequest as invalid:
            raise UsageError("; ".join(f"{FLAG_OF_FIELD.get(error.field, error.field)}: "
                                       f"{error.message}" for error in invalid.errors)) from None
        print(json.dumps(links_json(args.subject, links)) if args.json
              else links_text(args.subject, links, tz, request.devices, sandbox=args.sandbox))
    return 0


def links_request(args: argparse.Namespace, tz: tzinfo, now: float,
                  default_valid_for: str) -> MeetingRequest:
    """Turn the command's options into a request; times become epoch seconds, and the links
    work for DEFAULT_VALID_FOR unless ``--valid-for`` says otherwise, checked as in the chat."""
    start = typed_start(args, tz)
    try:
        lifetime = validity(args.valid_for or default_valid_for)
    except InvalidRequest:
        raise UsageError(f"--valid-for must look like 30m, 2h or 7d, {VALIDITY_RANGE}") from None
    nbf, exp = link_window(start, lifetime, now)
    return MeetingRequest(
        sub=unique_sub(args.subject, args.key),
        nbf=nbf,
        exp=exp,
        devices=tuple(args.device),
        num_host=args.hosts,
        num_guest=args.guests,
        provide_short_urls=True if args.short else None,
        vertical_type=args.vertical,
        login_url_for_host=False if args.no_host_login else None,
        jwe_alg=args.jwe_alg,
        salt_length=args.salt_length,
        iterations=args.iterations,
        enc=args.enc,
        jws_alg=args.jws_alg,
    )


# The broker's names for what the request checks, as the command's flags (or setting) say them.
FLAG_OF_FIELD = {
    "jwt.sub": "--subject", "jwt.nbf": "--start", "jwt.exp": "--valid-for",
    "numHost": "--hosts", "numGuest": "--guests", "jwt.flow": "--device",
    "verticalType": "--vertical", "jweAlg": "--jwe-alg", "enc": "--enc", "jwsAlg": "--jws-alg",
    "saltLength": "--salt-length", "iterations": "--iterations", "aud": "IC_AUDIENCE",
}


def typed_start(args: argparse.Namespace, tz: tzinfo) -> datetime | None:
    """``--start`` as the wall time typed in ``tz`` (a time the clocks skip is moved past it)."""
    if not args.start:
        return None
    try:
        return datetime.strptime(args.start, "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    except ValueError:
        raise UsageError('--start must look like "2026-12-01 09:00"') from None


@contextlib.contextmanager
def _settings(sandbox: bool) -> Iterator[Settings]:
    """Real settings from the environment, or the same pointed at a sandbox's broker."""
    with contextlib.ExitStack() as stack:
        if sandbox:
            from bot.devtools.in_process import sandboxed_settings

            settings = stack.enter_context(sandboxed_settings())
        else:
            settings = Settings.from_env()
        logs.configure(settings.log_level or "WARNING", settings.secret_values())
        yield settings


def links_json(subject: str, links: MeetingLinks) -> dict[str, object]:
    """The links as a JSON-ready dict."""
    return {
        "subject": subject,
        "sub": links.sub,
        "nbf": links.nbf,
        "exp": links.exp,
        **{
            group: [{"url": link.url, "short_url": link.short_url} for link in members]
            for group, members in (("hosts", links.hosts), ("guests", links.guests))
        },
    }


def links_text(
    subject: str, links: MeetingLinks, tz: tzinfo, devices: Sequence[str], *, sandbox: bool
) -> str:
    """The links as a person reads them in a terminal."""
    lines = [f"{subject}", f"  valid   {describe_window(links.nbf, links.exp, tz)}"]
    if devices:
        lines.append(f"  dials   {', '.join(devices)}")
    if sandbox:
        lines.append("  (sandbox: real-looking links from the local broker; they open no meeting)")
    for link in links.all:
        lines.append("")
        lines.append(f"{link.label}")
        if link.short_url:
            lines.append(f"  {link.short_url}")
        lines.append(f"  {link.url}")
    return "\n".join(lines)
