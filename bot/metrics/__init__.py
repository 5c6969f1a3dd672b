"""What the bot counts for Prometheus, and how a scrape reads it.

``record`` owns every metric and the one-line hooks the rest of the bot calls (nothing else
imports ``prometheus_client`` to count); ``scrape`` serves them. Under ``serve`` each process
writes its values to files in one directory (prometheus_client's multiprocess mode, named by
``PROMETHEUS_MULTIPROC_DIR``) and a scrape of any web process adds them up; a process that died
keeps its counts, and :func:`forget_process` drops what only a live process means (it is alive,
its websocket is connected).
"""

from __future__ import annotations


def forget_process(pid: int) -> None:
    """``pid`` has died and been reaped: its "alive" gauges stop counting (gunicorn's
    ``child_exit`` calls this for web processes, the supervisor for worker processes).

    Imported here, not above: the supervisor stays small until a worker process dies.
    """
    from prometheus_client import multiprocess, values

    if values.ValueClass is not values.MutexValue:  # else no file was written: metrics are off
        multiprocess.mark_process_dead(pid)
