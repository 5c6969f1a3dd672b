"""Serving the metrics: one registry per process that answers scrapes.

Under ``serve`` the processes share their values through files (multiprocess mode), and the
web processes answer scrapes on a port of their own (gunicorn listens on ``METRICS_PORT`` beside
``PORT``; :func:`beside` routes by the port a request came in on, so the webhook port never
shows them). A ``work`` or ``listen`` process on its own serves its values itself
(:func:`serve_alone`). Either way the queue is read from the store when scraped: its depth, the
age of its oldest job and the jobs scheduled for later are the store's, not any one process's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.values import MutexValue, ValueClass

from bot.jobs.storage import Store, StoreUnavailable

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATH = "/metrics"


class QueueCollector(Collector):
    """The queue as the store sees it at scrape time (a custom collector: it is registered only
    in the registry that answers, since multiprocess mode cannot share one)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        try:
            depth, oldest = self._store.backlog(), self._store.oldest_waiting()
            later = self._store.scheduled()
        except StoreUnavailable:  # the store said why in the log
            yield GaugeMetricFamily("icbot_store_up", "1 when the store answered the scrape", 0)
            return
        yield GaugeMetricFamily("icbot_store_up", "1 when the store answered the scrape", 1)
        yield GaugeMetricFamily("icbot_queue_jobs", "Jobs due by now and not yet done or "
                                "abandoned", depth)
        yield GaugeMetricFamily("icbot_queue_oldest_job_age_seconds", "How long the job "
                                "waiting longest has been due (0 when none waits)",
                                0.0 if oldest is None else max(0.0, self._clock() - oldest))
        yield GaugeMetricFamily("icbot_scheduled_jobs", "Jobs scheduled for later, not yet "
                                "due", later)


def shared() -> bool:
    """Whether this process writes its values to files for another to add up."""
    return ValueClass is not MutexValue


def registry(store: Store) -> CollectorRegistry:
    """What a scrape reads: every process's files under ``serve``, else this process's own
    metrics (with the process and platform collectors), and the queue."""
    if shared():
        found = CollectorRegistry()
        MultiProcessCollector(found)
    else:
        found = REGISTRY
    found.register(QueueCollector(store))
    return found


def beside(app: WSGIApp, port: int, store: Store) -> WSGIApp:
    """``app``, with ``/metrics`` answered instead on requests that came in on ``port`` (and
    nothing else there); ``app`` alone when ``port`` is 0 (no metrics)."""
    if not port:
        return app
    metrics = make_wsgi_app(registry(store))
    wanted = str(port)

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("SERVER_PORT") != wanted:
            return app(environ, start_response)
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"metrics are at /metrics\n"]
        return metrics(environ, start_response)

    return route


def serve_alone(host: str, port: int, store: Store) -> None:
    """Answer scrapes from a thread of this process (OSError when the port is taken)."""
    start_http_server(port, addr=host, registry=registry(store))


def empty(directory: str) -> None:
    """Make ``directory`` and remove what an earlier run left in it: values of processes that
    are gone would otherwise be added to the new ones."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.db"):
        leftover.unlink()
