"""Run the sandbox as a process: print its URLs and token as one JSON line, serve until signalled.

Usage::

    python -m bot sandbox --seed 7 --fault "POST /api/v2/joseencrypt status=503 times=2"
"""

from __future__ import annotations

import argparse
import json
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
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fault(spec: str) -> Fault:
    """Parse a --fault value, turning mistakes into argument errors."""
    try:
        return Fault.parse(spec)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = _OneLineParser(
        prog="sandbox", description="Local Webex, Instant Connect, SMTP relay and Twilio emulator.")
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
        endpoints = {
            "url": sandbox.url,
            "webex_base_url": sandbox.webex_base_url,
            "broker_url": sandbox.broker_url,
            "bot_token": sandbox.bot_token,
            "smtp_url": sandbox.smtp_url,
            "smtp_ca_file": sandbox.smtp_ca_file,
            "twilio_api_url": sandbox.twilio_api_url,
            "twilio_account_sid": sandbox.twilio_account_sid,
            "twilio_auth_token": sandbox.twilio_auth_token,
            "twilio_from": sandbox.twilio_from,
        }
        print(json.dumps(endpoints), flush=True)
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
