"""The sandbox's websocket, spoken to directly: catalog, devices, handshake, frames, closes."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.ids import raw_uuid


def device(box: Sandbox) -> dict:
    auth = {"Authorization": f"Bearer {box.bot_token}"}
    wdm = requests.get(f"{box.u2c_url}/catalog?format=hostmap", headers=auth,
                       timeout=5).json()["serviceLinks"]["wdm"]
    return requests.post(f"{wdm}/devices", json={"name": "t"}, headers=auth, timeout=5).json()


@contextlib.contextmanager
def opened(box: Sandbox, record: dict, token: str | None = None) -> Iterator[ClientConnection]:
    with connect(record["webSocketUrl"], ping_interval=None) as socket:
        socket.send(json.dumps({"id": "a", "type": "authorization",
                                "data": {"token": f"Bearer {token or box.bot_token}"}}))
        yield socket


def test_an_authorized_socket_is_confirmed_and_gets_every_message(sandbox):
    alice = sandbox.add_person("alice@clinic.example.com", "Alice")
    clinic = sandbox.add_room("Clinic", members=[alice])
    with opened(sandbox, device(sandbox)) as socket:
        assert json.loads(socket.recv(timeout=5))["data"]["eventType"] == "mercury.buffer_state"
        message = sandbox.post_message(alice, clinic, "no mention", mention_bot=False)
        frame = json.loads(socket.recv(timeout=5))
        activity = frame["data"]["activity"]
        assert (activity["verb"], activity["id"]) == ("post", raw_uuid(message["id"]))
        assert activity["target"] == {"id": raw_uuid(clinic["id"]), "objectType": "conversation",
                                      "tags": []}
        assert not sandbox.mercury_settled()
        socket.send(json.dumps({"type": "ack", "messageId": frame["id"]}))
        sandbox.wait_for(sandbox.mercury_settled)
        socket.send(json.dumps({"id": "p-1", "type": "ping"}))
        assert json.loads(socket.recv(timeout=5)) == {"id": "p-1", "type": "pong"}
    assert not sandbox.deliveries


def test_a_wrong_token_is_closed_with_4401_and_an_unknown_device_refused(sandbox):
    record = device(sandbox)
    with opened(sandbox, record, token="forged") as socket, pytest.raises(ConnectionClosed):
        socket.recv(timeout=5)
    assert socket.close_code == 4401
    with pytest.raises(InvalidStatus) as refused:
        connect(record["webSocketUrl"].replace(record["id"], "0" * 8 + "-0000-4000-8000-"
                                               + "0" * 12))
    assert refused.value.response.status_code == 404
    assert [h["status"] for h in sandbox.mercury_handshakes] == [101, 404]
    assert sandbox.bot_token not in str(sandbox.mercury_handshakes)


def test_a_second_socket_replaces_the_first_and_a_deleted_device_closes_4404(sandbox):
    record = device(sandbox)
    with opened(sandbox, record) as first, opened(sandbox, record) as second:
        first.recv(timeout=5)
        second.recv(timeout=5)
        with pytest.raises(ConnectionClosed):
            first.recv(timeout=5)
        assert (first.close_code, first.close_reason) == (4000, "replaced")
        sandbox.delete_device(record["url"])
        with pytest.raises(ConnectionClosed):
            second.recv(timeout=5)
        assert second.close_code == 4404
    assert sandbox.devices[0]["deleted"] is True


def test_events_while_no_socket_is_open_are_missed():
    with Sandbox(seed=5) as box:
        alice = box.add_person("alice@clinic.example.com", "Alice")
        device(box)
        box.post_message(alice, box.direct_room(alice), "help")
        [missed] = box.mercury_missed
        assert missed["data"]["activity"]["target"]["tags"] == ["ONE_ON_ONE"]
        assert box.mercury_settled()


def test_device_ids_follow_the_seed():
    ids = []
    for _ in range(2):
        with Sandbox(seed=9) as box:
            ids.append(device(box)["id"])
    assert ids[0] == ids[1]


def test_waiting_for_settled_wakes_when_a_posted_message_is_delivered(sandbox):
    """A message that sends no frame (no socket open) still ends the wait at once."""
    alice = sandbox.add_person("alice@clinic.example.com", "Alice")
    room = sandbox.add_room("Clinic", members=[alice])
    gate = threading.Event()
    sandbox._dispatcher.subscribe(lambda event: gate.wait(5))
    response = requests.post(f"{sandbox.webex_base_url}messages", json={"roomId": room["id"],
                             "markdown": "hello"}, timeout=5,
                             headers={"Authorization": f"Bearer {sandbox.bot_token}"})
    assert response.status_code == 200
    assert not sandbox.mercury_settled()  # the message is still being delivered
    threading.Timer(0.2, gate.set).start()
    assert sandbox.wait_for(sandbox.mercury_settled, timeout=2.0)
