"""The service catalog and the device service (WDM): where a bot finds its websocket.

``GET /u2c/api/v1/catalog?format=hostmap`` names the services (``serviceLinks``) and, in its
host map (``hostCatalog``), the cluster of each host: every cluster's conversation service is
there, which is how a client learns the cluster of a space from an activity's ``target.url``.
``/wdm/api/v1/devices`` lists, registers, reads, refreshes and deletes the bot's devices. Each
device's ``webSocketUrl`` points at the sandbox's websocket server (:mod:`.mercury`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .ids import CLUSTERS, IdFactory, now_iso
from .journal import Journal
from .responses import ApiError, Call, json_response, read_json_object

NO_DEVICE = "Device not found."
DEVICE_FIELDS = ("deviceName", "deviceType", "localizedModel", "model", "name", "systemName",
                 "systemVersion")


class Devices:
    """The bot's registered devices, deleted ones kept (marked) for the record."""

    def __init__(self, journal: Journal, ids: IdFactory, http_url: Callable[[], str],
                 socket_url: Callable[[], str]) -> None:
        self._journal = journal
        self._lock = journal.lock
        self._ids = ids
        self._http_url = http_url
        self._socket_url = socket_url
        self._devices: dict[str, dict[str, Any]] = {}

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """A new device with the given descriptive fields."""
        with self._lock:
            uuid = self._ids.uuid()
            record = {key: body[key] for key in DEVICE_FIELDS if isinstance(body.get(key), str)}
            record.update(
                id=uuid,
                url=f"{self._http_url()}/wdm/api/v1/devices/{uuid}",
                webSocketUrl=f"{self._socket_url()}/mercury/api/v1/apps/wx2/registrations/"
                             f"{uuid}/messages",
                creationTime=now_iso(),
            )
            self._devices[uuid] = record
            self._journal.changed()
            return copy.deepcopy(record)

    def live(self, uuid: str) -> bool:
        """Whether the device exists and is not deleted."""
        with self._lock:
            return uuid in self._devices and not self._devices[uuid].get("deleted")

    def get(self, uuid: str) -> dict[str, Any]:
        """A live device, or 404."""
        with self._lock:
            if not self.live(uuid):
                raise ApiError(404, NO_DEVICE)
            return copy.deepcopy(self._devices[uuid])

    def update(self, uuid: str, body: dict[str, Any]) -> dict[str, Any]:
        """Refresh a live device's descriptive fields, or 404."""
        with self._lock:
            self.get(uuid)
            self._devices[uuid].update(
                {key: body[key] for key in DEVICE_FIELDS if isinstance(body.get(key), str)})
            self._journal.changed()
            return copy.deepcopy(self._devices[uuid])

    def delete(self, uuid: str) -> None:
        """Forget a device (its record stays, marked deleted), or 404."""
        with self._lock:
            self.get(uuid)
            self._devices[uuid]["deleted"] = True
            self._journal.changed()

    def uuid_of(self, device: str) -> str:
        """A device's uuid from its uuid or its url."""
        return device.rstrip("/").rsplit("/", 1)[-1]

    @property
    def live_uuids(self) -> list[str]:
        """The live devices' uuids, oldest first."""
        with self._lock:
            return [uuid for uuid in self._devices if self.live(uuid)]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every device ever registered, oldest first, deleted ones with "deleted": True."""
        with self._lock:
            return copy.deepcopy(list(self._devices.values()))


class DevicesApi:
    """The catalog and WDM routes."""

    def __init__(self, devices: Devices, http_url: Callable[[], str], home_cluster: str) -> None:
        self._devices = devices
        self._http_url = http_url
        self._home = CLUSTERS[home_cluster]

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule("/u2c/api/v1/catalog", methods=["GET"], endpoint=self.catalog),
            Rule("/wdm/api/v1/devices", methods=["GET"], endpoint=self.list_devices),
            Rule("/wdm/api/v1/devices", methods=["POST"], endpoint=self.register),
            Rule("/wdm/api/v1/devices/<uuid>", methods=["GET"], endpoint=self.get),
            Rule("/wdm/api/v1/devices/<uuid>", methods=["PUT"], endpoint=self.update),
            Rule("/wdm/api/v1/devices/<uuid>", methods=["DELETE"], endpoint=self.delete),
        ]

    def catalog(self, call: Call) -> Response:
        """GET /u2c/api/v1/catalog?format=hostmap: the services' addresses."""
        base = self._http_url()
        return json_response({
            "serviceLinks": {"wdm": f"{base}/wdm/api/v1", "hydra": f"{base}/v1",
                             "conversation": self._home.conversation_url},
            "hostCatalog": {
                cluster.conversation_host: [{"host": cluster.conversation_host, "ttl": -1,
                                             "priority": 5,
                                             "id": f"{cluster.team}:conversation"}]
                for cluster in CLUSTERS.values()},
        })

    def list_devices(self, call: Call) -> Response:
        """GET /wdm/api/v1/devices: the bot's live devices."""
        return json_response({"devices": [self._devices.get(uuid)
                                          for uuid in self._devices.live_uuids]})

    def register(self, call: Call) -> Response:
        """POST /wdm/api/v1/devices."""
        return json_response(self._devices.register(read_json_object(call.request)))

    def get(self, call: Call) -> Response:
        """GET /wdm/api/v1/devices/{uuid}."""
        return json_response(self._devices.get(call.args["uuid"]))

    def update(self, call: Call) -> Response:
        """PUT /wdm/api/v1/devices/{uuid}."""
        return json_response(self._devices.update(call.args["uuid"],
                                                  read_json_object(call.request)))

    def delete(self, call: Call) -> Response:
        """DELETE /wdm/api/v1/devices/{uuid}."""
        self._devices.delete(call.args["uuid"])
        return Response(status=204)
