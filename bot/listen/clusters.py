"""Which cluster hosts a space: the host of its conversation URL, in the catalog's host map.

This is the JS SDK's way (``getHydraClusterString``: ``services.getClusterId(target.url)``), not
``webex_bot``'s (asking the conversation service for each activity): the catalog is fetched
once anyway to find the device service, so it costs no request per event, and it needs no
call to an internal service the bot otherwise never uses (``PROTOCOL.md``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bot.listen.activity import hydra_cluster
from bot.upstream.devices import DeviceRegistry

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0  # an unknown host asks the catalog again at most this often
FALLBACK = "us"


class Clusters:
    """Looks up clusters through the registry's catalog, asking it again for an unknown host."""

    def __init__(self, registry: DeviceRegistry,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._clock = clock
        self._refresh_after = float("-inf")
        self._unknown: set[str] = set()

    def of(self, conversation_url: str) -> str:
        """The cluster as REST ids spell it ("us", "urn:TEAM:eu-central-1_k", ...).

        A host the catalog does not name, even asked again, is taken for the US cluster (said
        once per host in the log): what every client did before clusters were read. Raises
        UpstreamError when the catalog cannot be asked just now."""
        host = (urlsplit(conversation_url).hostname or "").lower()
        cluster = self._look_up(host, refresh=False)
        if cluster is None and host and self._clock() >= self._refresh_after:
            self._refresh_after = self._clock() + REFRESH_SECONDS
            cluster = self._look_up(host, refresh=True)
        if cluster is not None:
            return cluster
        if host not in self._unknown:
            self._unknown.add(host)
            log.warning("the service catalog names no cluster for a space's conversation host; "
                        "taking it for the US cluster", extra={"host": host or "(none)"})
        return FALLBACK

    def _look_up(self, host: str, *, refresh: bool) -> str | None:
        found = self._registry.catalog(refresh=refresh).cluster_of(host) if host else None
        return hydra_cluster(found) if found is not None else None
