"""The bot's device at Webex: where its websocket is (the service catalog, then WDM devices).

Webex does not document this for bots; it is what the Webex clients and the JS SDK do (see
``bot/listen/PROTOCOL.md``). A device is registered once and kept: the listener remembers it
and reuses it on every reconnect and restart, and registers a new one only when Webex says the
old one is gone (a 404), so devices do not pile up on the bot's account.

The catalog's host map also says which cluster each host belongs to; the listener reads the
cluster of a space from it (the host of an activity's conversation URL).

Usage::

    registry = DeviceRegistry(token, "https://u2c.wbx2.com/u2c/api/v1", retry=policy)
    device = registry.find_or_register()          # GET devices, else POST one
    registry.catalog().cluster_of("conv-k.wbx2.com")   # "urn:TEAM:eu-central-1_k:conversation"
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from bot.errors import MalformedResponse, Rejected, error_for_status, network_errors
from bot.limits import UPSTREAM_TIMEOUT
from bot.secret import Secret
from bot.upstream.retry import RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)
SERVICE = "Webex devices"
DEVICE_NAME = "instant-connect-bot"
DEVICE_BODY = {
    "deviceName": DEVICE_NAME,
    "deviceType": "DESKTOP",
    "localizedModel": "python",
    "model": "python",
    "name": DEVICE_NAME,
    "systemName": "instant-connect-bot",
    "systemVersion": "1",
}


class DeviceGone(Rejected):
    """Webex no longer knows the device (404): register a new one."""


@dataclass(frozen=True)
class Device:
    """A registered device: its WDM address and the websocket it receives events on."""

    url: str
    websocket_url: str

    def to_json(self) -> str:
        """Serialised for the store."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Device:
        """Read back what :meth:`to_json` stored."""
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ServiceCatalog:
    """What ``catalog?format=hostmap`` answers: each service's address (``serviceLinks``) and,
    from the host map (``hostCatalog``), the cluster id of every host it lists."""

    links: dict[str, str] = field(default_factory=dict)
    clusters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_hostmap(cls, body: dict[str, Any]) -> ServiceCatalog:
        """Read the answer; entries that are not what the JS SDK reads are skipped.

        A host map entry is keyed by a service's default host and lists the hosts serving it,
        each with a cluster id (``urn:TEAM:<cluster>:<service>``); the key itself takes its
        first entry's cluster, as the JS SDK's ``findClusterId`` does."""
        links = {name: url for name, url in (body.get("serviceLinks") or {}).items()
                 if isinstance(name, str) and isinstance(url, str)}
        clusters: dict[str, str] = {}
        host_map = body.get("hostCatalog")
        for key, entries in (host_map.items() if isinstance(host_map, dict) else ()):
            good = [entry for entry in entries if isinstance(entry, dict)
                    and isinstance(entry.get("host"), str) and isinstance(entry.get("id"), str)
                    ] if isinstance(entries, list) else []
            for entry in good:
                clusters.setdefault(entry["host"].lower(), entry["id"])
            if good and isinstance(key, str):
                clusters.setdefault(key.lower(), good[0]["id"])
        return cls(links, clusters)

    def cluster_of(self, host: str) -> str | None:
        """The cluster id the host map gives this host, or None."""
        return self.clusters.get(host.lower())


class DeviceRegistry:
    """Finds or registers the bot's device, each call retried within bounds."""

    def __init__(
        self, token: Secret, u2c_url: str, *, retry: RetryPolicy | None = None,
        timeout: float = UPSTREAM_TIMEOUT,
    ) -> None:
        self._token = token
        self._u2c_url = u2c_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._session = requests.Session()  # honours HTTPS_PROXY, as requests always does
        self._catalog: ServiceCatalog | None = None

    def __repr__(self) -> str:
        return "DeviceRegistry()"

    def find_or_register(self) -> Device:
        """The bot's device of this name if Webex has one, else a new one."""
        listed = self._request("GET", f"{self._wdm()}/devices")
        for record in listed.get("devices") or []:
            if isinstance(record, dict) and record.get("name") == DEVICE_NAME:
                device = _device(record)
                log.info("reusing the bot's device")
                return device
        device = _device(self._request("POST", f"{self._wdm()}/devices", DEVICE_BODY))
        log.info("registered a device for the bot")
        return device

    def catalog(self, *, refresh: bool = False) -> ServiceCatalog:
        """The service catalog, asked once (again when ``refresh``)."""
        if self._catalog is None or refresh:
            body = self._request("GET", f"{self._u2c_url}/catalog?format=hostmap")
            self._catalog = ServiceCatalog.from_hostmap(body)
        return self._catalog

    def _wdm(self) -> str:
        """The WDM service's address, from the service catalog."""
        wdm = self.catalog().links.get("wdm", "")
        if not wdm.startswith(("https://", "http://")):
            raise MalformedResponse(SERVICE, detail="the service catalog names no wdm")
        return wdm.rstrip("/")

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        return self._retry.call(lambda: self._once(method, url, body), service="webex_devices")

    def _once(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        with network_errors(SERVICE):
            response = self._session.request(
                method, url, json=body, timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token.reveal()}"})
        tracking_id = response.headers.get("Trackingid")
        if response.status_code == 404:
            raise DeviceGone(SERVICE, status=404, tracking_id=tracking_id)
        if response.status_code >= 400:
            raise error_for_status(
                SERVICE, response.status_code, tracking_id=tracking_id,
                detail=response.text[:200],
                retry_after=parse_retry_after(response.headers.get("Retry-After")))
        try:
            data = response.json()
        except ValueError:
            raise MalformedResponse(SERVICE, status=response.status_code,
                                    tracking_id=tracking_id, detail="not JSON") from None
        if not isinstance(data, dict):
            raise MalformedResponse(SERVICE, status=response.status_code,
                                    tracking_id=tracking_id, detail="not a JSON object")
        return data


def _device(record: dict[str, Any]) -> Device:
    url, websocket_url = record.get("url"), record.get("webSocketUrl")
    if not isinstance(url, str) or not isinstance(websocket_url, str):
        raise MalformedResponse(SERVICE, detail="a device without url or webSocketUrl")
    return Device(url, websocket_url)
