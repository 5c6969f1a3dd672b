"""``python -m bot.jobs.release --log-level LEVEL OWNER``: hand back the jobs of a worker process
that died, at once rather than when their leases run out.

``serve``'s supervisor runs it when a worker process it started has died (it has reaped it, so
the process can write nothing more). It is a process of its own so that the supervisor stays
small: this one loads the store's engine (Redis' client alone is some 17 MiB), and exits. It reads
the store from ``STORAGE_URL``, which ``serve`` sets before it becomes the supervisor.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from bot import logs
from bot.jobs.storage import StoreUnavailable, open_store

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    """Release ``OWNER``'s claims and heartbeat; exit 1 when the store cannot be reached."""
    parser = argparse.ArgumentParser(prog="python -m bot.jobs.release")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("owner")
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    store = open_store(os.environ["STORAGE_URL"])
    try:
        released = store.release(args.owner)
    except StoreUnavailable:  # the store logged why; the leases still run out
        return 1
    finally:
        store.close()
    log.info("jobs of a dead worker process handed back",
             extra={"owner": args.owner, "jobs": released})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
