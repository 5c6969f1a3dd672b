"""Run the sandbox as a process: print its URLs and token as one JSON line on stdout (for
scripts), the settings that point the bot at it on stderr (for a person), serve until signalled.

Usage::

    python -m bot sandbox --seed 7 --fault "POST /api/v2/joseencrypt status=503 times=2"
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import signal
import sys
import threading
from typing import NoReturn

from .faults import Fault
from .ids import CLUSTERS
from .sandbox import Sandbox


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports bad arguments in one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print "sandbox: error: ..." alone, so scripts can show it as is."""
        self.exit(2, f"sandbox: error: {message}\n")


# The bot's settings, and the sandbox's attribute each is set to.
SETTINGS = {
    "WEBEX_BOT_TOKEN": "bot_token",
    "WEBEX_API_URL": "webex_base_url",
    "U2C_URL": "u2c_url",
    "IC_BROKER_URL": "broker_url",
    "SMTP_URL": "smtp_url",
    "SMTP_CA_FILE": "smtp_ca_file",
    "TWILIO_API_URL": "twilio_api_url",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_FROM": "twilio_from",
}


def settings_for_the_bot(sandbox: Sandbox) -> str:
    """Shell lines a person pastes before ``python -m bot listen`` (or ``serve``, with a
    WEBHOOK_SECRET and ``webhooks sync``) to run the bot against this sandbox, with a fresh
    meeting key: 32 random bytes in url-safe base64, as ``python -m bot new-key`` prints (the
    sandbox imports nothing of the bot's)."""
    lines = [f"{name}={shlex.quote(str(getattr(sandbox, key)))}"
             for name, key in SETTINGS.items()]
    return "\n".join(["# The bot's settings for this sandbox; then: python -m bot listen",
                       *(f"export {line}" for line in lines),
                       f"export MEETING_KEYS={secrets.token_urlsafe(32)}",
                       "export MAIL_FROM=instant-connect@clinic.example.com"])


def _fault(spec: str) -> Fault:
    """Parse a --fault value, turning mistakes into argument errors."""
    try:
        return Fault.parse(spec)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = _OneLineParser(
        prog="python -m bot sandbox",
        description="Run a local Webex (REST, webhooks and the websocket), Instant Connect "
        "broker, SMTP relay and Twilio until Ctrl-C. It prints its URLs and the bot's token as "
        "one JSON line on stdout, and on stderr the settings that point the bot at it: "
        + ", ".join([*SETTINGS, "MEETING_KEYS", "MAIL_FROM"])
        + " (U2C_URL for `python -m bot listen`).",
        epilog="settings: none (it reads no environment variable)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids, shorts and defaults")
    parser.add_argument("--cluster", choices=sorted(CLUSTERS), default="us",
                        help="the Webex cluster hosting the bot's organisation's spaces")
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        help='e.g. "POST /api/v2/joseencrypt status=503 times=2 retry_after=1 latency=0.5 drop"'
             ' ("after": carry the request out first, then answer with the fault)',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve a sandbox until SIGINT or SIGTERM; 0 on a clean stop, 2 on bad arguments."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as leaving:
        return int(leaving.code or 0)
    sandbox = Sandbox(seed=args.seed, host=args.host, port=args.port, cluster=args.cluster)
    for fault in args.fault:
        sandbox.add_fault(fault)
    try:
        sandbox.start()
    except OSError as error:
        print(f"sandbox: error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        endpoints = {"url": sandbox.url,
                     **{key: getattr(sandbox, key) for key in SETTINGS.values()}}
        print(json.dumps(endpoints), flush=True)
        print(settings_for_the_bot(sandbox), file=sys.stderr, flush=True)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
