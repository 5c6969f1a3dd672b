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
from bot.devtools.sandbox.ids import raw_uuid, webex_id

ASK = "?outboundWireFormat=text&bufferStates=true&aliasHttpStatus=true"
BUFFER_STATE = "mercury.buffer_state"


def catalog(box: Sandbox) -> dict:
    auth = {"Authorization": f"Bearer {box.bot_token}"}
    return requests.get(f"{box.u2c_url}/catalog?format=hostmap", headers=auth, timeout=5).json()


def device(box: Sandbox) -> dict:
    auth = {"Authorization": f"Bearer {box.bot_token}"}
    wdm = catalog(box)["serviceLinks"]["wdm"]
    return requests.post(f"{wdm}/devices", json={"name": "t"}, headers=auth, timeout=5).json()


@contextlib.contextmanager
def opened(box: Sandbox, record: dict, token: str | None = None,
           query: str = ASK) -> Iterator[ClientConnection]:
    with connect(record["webSocketUrl"] + query, ping_interval=None) as socket:
        socket.send(json.dumps({"id": "a", "type": "authorization",
                                "data": {"token": f"Bearer {token or box.bot_token}"}}))
        yield socket


def test_an_authorized_socket_is_confirmed_and_gets_every_message(sandbox):
    alice = sandbox.add_person("alice@clinic.example.com", "Alice")
    clinic = sandbox.add_room("Clinic", members=[alice])
    with opened(sandbox, device(sandbox)) as socket:
        assert json.loads(socket.recv(timeout=5))["data"]["eventType"] == BUFFER_STATE
        message = sandbox.post_message(alice, clinic, "no mention", mention_bot=False)
        frame = json.loads(socket.recv(timeout=5))
        activity = frame["data"]["activity"]
        assert (activity["verb"], activity["id"]) == ("post", raw_uuid(message["id"]))
        room = raw_uuid(clinic["id"])
        assert activity["target"] == {
            "id": room, "objectType": "conversation", "tags": [],
            "url": f"https://conv-a.wbx2.sandbox.invalid/conversation/api/v1/conversations/{room}"}
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


@pytest.mark.parametrize(("mode", "query", "told"), [
    ("asked", ASK, True), ("asked", "", False), ("always", "", True), ("never", ASK, False),
])
def test_the_buffer_state_is_sent_as_the_mode_says(mode, query, told):
    with Sandbox(seed=5, mercury_buffer_state=mode) as box, \
            opened(box, device(box), query=query) as socket:
        alice = box.add_person("alice@clinic.example.com", "Alice")
        box.wait_for(box.mercury_connected)
        box.post_message(alice, box.direct_room(alice), "help")
        first = json.loads(socket.recv(timeout=5))["data"]["eventType"]
        assert first == (BUFFER_STATE if told else "conversation.activity")
    with pytest.raises(ValueError, match="buffer_state must be"):
        Sandbox(mercury_buffer_state="sometimes")


def test_a_space_of_the_second_cluster_says_so_in_its_ids_frames_and_the_catalog(sandbox):
    eu = sandbox.add_org("eu")
    elsa = sandbox.add_person("elsa@klinik.example.de", "Elsa", org_id=eu)
    dm = sandbox.direct_room(elsa)
    assert elsa["id"] == webex_id("PEOPLE", raw_uuid(elsa["id"]))  # people stay "us"
    assert dm["id"] == webex_id("ROOM", raw_uuid(dm["id"]), "eu")
    hosts = catalog(sandbox)["hostCatalog"]
    [entry] = hosts["conv-k.wbx2.sandbox.invalid"]
    assert entry["id"] == "urn:TEAM:eu-central-1_k:conversation"
    with opened(sandbox, device(sandbox)) as socket:
        socket.recv(timeout=5)
        message = sandbox.post_message(elsa, dm, "help")
        target = json.loads(socket.recv(timeout=5))["data"]["activity"]["target"]
    assert target["url"].startswith("https://conv-k.wbx2.sandbox.invalid/conversation/")
    assert message["id"] == webex_id("MESSAGE", raw_uuid(message["id"]), "eu")
    auth = {"Authorization": f"Bearer {sandbox.bot_token}"}
    for path, record in (("messages", message), ("rooms", dm)):
        right = requests.get(f"{sandbox.webex_base_url}{path}/{record['id']}", headers=auth,
                             timeout=5)
        assert right.status_code == 200
        as_us = webex_id(path.upper().rstrip("S"), raw_uuid(record["id"]))
        wrong = requests.get(f"{sandbox.webex_base_url}{path}/{as_us}", headers=auth, timeout=5)
        assert wrong.status_code == 404  # the id of the wrong cluster: no such thing


def test_a_revoked_token_is_refused_everywhere_until_cleared(sandbox):
    record = device(sandbox)
    with opened(sandbox, record) as socket:
        socket.recv(timeout=5)
        sandbox.revoke_token()
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=5)
        assert socket.close_code == 4401
    auth = {"Authorization": f"Bearer {sandbox.bot_token}"}
    assert requests.get(f"{sandbox.u2c_url}/catalog", headers=auth, timeout=5).status_code == 401
    with opened(sandbox, record) as socket, pytest.raises(ConnectionClosed):
        socket.recv(timeout=5)
    assert socket.close_code == 4401
    sandbox.clear_faults()
    assert catalog(sandbox)["serviceLinks"]["wdm"]
    with opened(sandbox, record) as socket:
        assert json.loads(socket.recv(timeout=5))["data"]["eventType"] == BUFFER_STATE
