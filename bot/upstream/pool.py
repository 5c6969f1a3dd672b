"""How many connections an HTTP client keeps: one per thread that calls it at once."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from bot.limits import WORKER_THREADS

# One kept connection per worker thread by default: fewer and the threads above it open (and
# then discard, with urllib3's "Connection pool is full" warning) a new connection per call.
DEFAULT_POOL_SIZE = WORKER_THREADS


def size_pool(session: requests.Session, pool_size: int) -> None:
    """Keep up to ``pool_size`` connections per host, so that many threads reuse theirs.

    Not blocking: a thread beyond the size still gets a connection, it is just not kept.
    """
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, not {pool_size}")
    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_maxsize=pool_size))


def pooled_session(pool_size: int = DEFAULT_POOL_SIZE) -> requests.Session:
    """A new session keeping up to ``pool_size`` connections per host."""
    session = requests.Session()
    size_pool(session, pool_size)
    return session
