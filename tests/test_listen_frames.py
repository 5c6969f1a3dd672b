"""Reading Webex's websocket frames and keeping the socket alive, without any network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.devtools.sandbox.ids import webex_id
from bot.events import MEMBERSHIP, MESSAGE, SUBMIT
from bot.listen.activity import hydra_cluster, public_id, read_frame
from bot.listen.clusters import Clusters
from bot.listen.connection import Connection, Silent
from bot.secret import Secret
from bot.upstream.devices import ServiceCatalog

MESSAGE_UUID = "6d2a6a9e-0b0c-4b7e-9a1c-0f5a3a8b2c11"
ROOM_UUID = "1b1d6f0e-2a3a-4c5d-8e9f-0a1b2c3d4e5f"
ALICE_UUID = "a11ce000-0000-4000-8000-000000000001"
BOT_UUID = "b0700000-0000-4000-8000-000000000002"
EU = "urn:TEAM:eu-central-1_k"
EU_CONVERSATIONS = "https://conv-k.wbx2.com/conversation/api/v1/conversations/"
HOST_MAP = {
    "serviceLinks": {"wdm": "https://wdm-a.wbx2.com/wdm/api/v1",
                     "conversation": "https://conv-a.wbx2.com/conversation/api/v1"},
    "hostCatalog": {
        "conv-a.wbx2.com": [
            {"host": "conv-a.wbx2.com", "ttl": -1, "priority": 5,
             "id": "urn:TEAM:us-east-2_a:conversation"},
            {"host": "conv-a-2.wbx2.com", "ttl": -1, "priority": 3,
             "id": "urn:TEAM:us-east-2_a:conversation"}],
        "conv-k.wbx2.com": [
            {"host": "conv-k.wbx2.com", "ttl": -1, "priority": 5, "id": f"{EU}:conversation"}],
        "broken": ["not an entry", {"host": 3}],
    },
}


def frame(verb: str, **activity: Any) -> str:
    body = {"id": MESSAGE_UUID, "verb": verb, "published": "2026-12-02T10:00:00.000Z",
            "actor": {"id": ALICE_UUID, "entryUUID": ALICE_UUID, "objectType": "person"},
            "object": {"objectType": "comment"},
            "target": {"id": ROOM_UUID, "objectType": "conversation",
                       "url": EU_CONVERSATIONS + ROOM_UUID}, **activity}
    return json.dumps({"id": "frame-1", "sequenceNumber": 7,
                       "data": {"eventType": "conversation.activity", "activity": body}})


@pytest.mark.parametrize("cluster", ["us", "eu"])
def test_public_ids_are_the_rest_apis(cluster):
    in_ids = "us" if cluster == "us" else EU
    for kind in ("MESSAGE", "ROOM", "ATTACHMENT_ACTION", "MEMBERSHIP", "PEOPLE", "ORGANIZATION"):
        assert public_id(kind, MESSAGE_UUID, in_ids) == webex_id(kind, MESSAGE_UUID, cluster)


@pytest.mark.parametrize(("cluster_id", "in_ids"), [
    ("urn:TEAM:us-east-2_a:conversation", "us"), ("urn:TEAM:us-east-1_int13:conversation", "us"),
    (f"{EU}:conversation", EU), (EU, EU), ("urn:TEAM", None), ("", None), ("a::b", None),
])
def test_a_catalog_cluster_is_spelled_as_ids_spell_it(cluster_id, in_ids):
    assert hydra_cluster(cluster_id) == in_ids


@pytest.mark.parametrize("verb", ["post", "share"])
def test_a_message_frame_names_the_message_the_webhook_would(verb):
    read = read_frame(frame(verb))
    assert (read.id, read.sequence) == ("frame-1", 7)
    assert read.activity is not None and read.activity.kind == MESSAGE
    assert read.activity.conversation_url == EU_CONVERSATIONS + ROOM_UUID
    activity = read.activity.in_cluster(EU)
    assert activity.event_id == webex_id("MESSAGE", MESSAGE_UUID, "eu")
    assert activity.room_id == webex_id("ROOM", ROOM_UUID, "eu")
    assert activity.actor_id == webex_id("PEOPLE", ALICE_UUID)  # people: "us" everywhere


def test_a_card_submit_names_the_attachment_action():
    activity = read_frame(frame("cardAction", object={"objectType": "submit"})).activity
    assert activity is not None and activity.kind == SUBMIT
    assert activity.in_cluster("us").event_id == webex_id("ATTACHMENT_ACTION", MESSAGE_UUID)


def test_only_a_person_added_is_a_membership():
    added = read_frame(frame("add", object={"objectType": "person", "entryUUID": BOT_UUID}))
    assert added.activity is not None and added.activity.kind == MEMBERSHIP
    assert added.activity.in_cluster(EU).object_id == webex_id("PEOPLE", BOT_UUID)
    assert read_frame(frame("add", object={"objectType": "content"})).activity is None


class CatalogRegistry:
    """Answers the catalog as a DeviceRegistry would; counts how often it was asked again."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.refreshed = 0

    def catalog(self, *, refresh: bool = False) -> ServiceCatalog:
        if refresh and len(self.answers) > 1:
            self.answers.pop(0)
        self.refreshed += refresh
        return ServiceCatalog.from_hostmap(self.answers[0])


def clusters(registry: CatalogRegistry, now: list[float]) -> Clusters:
    return Clusters(registry, clock=lambda: now[0])  # type: ignore[arg-type]


def test_the_cluster_is_the_host_maps_for_the_conversation_host():
    registry, now = CatalogRegistry(HOST_MAP), [0.0]
    found = clusters(registry, now)
    assert found.of(EU_CONVERSATIONS + ROOM_UUID) == EU
    assert found.of(f"https://CONV-A-2.wbx2.com/conversation/api/v1/conversations/{ROOM_UUID}") \
        == "us"  # another host of the US conversation service
    assert registry.refreshed == 0


def test_an_unknown_host_asks_the_catalog_again_then_says_us_once(caplog):
    later = {**HOST_MAP, "hostCatalog": {**HOST_MAP["hostCatalog"], "conv-r.wbx2.com": [
        {"host": "conv-r.wbx2.com", "id": "urn:TEAM:ap-southeast-2_r:conversation"}]}}
    registry, now = CatalogRegistry(HOST_MAP, later), [0.0]
    found = clusters(registry, now)
    url = "https://conv-r.wbx2.com/conversation/api/v1/conversations/x"
    assert found.of(url) == "urn:TEAM:ap-southeast-2_r" and registry.refreshed == 1
    unknown = "https://conv-z.wbx2.com/conversation/api/v1/conversations/x"
    assert found.of(unknown) == "us" and found.of(unknown) == "us" and found.of("") == "us"
    assert registry.refreshed == 1  # asked again at most once a minute
    now[0] += 61
    assert found.of(unknown) == "us" and registry.refreshed == 2
    said = [r for r in caplog.records if "names no cluster" in r.getMessage()]
    assert [r.host for r in said] == ["conv-z.wbx2.com", "(none)"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", [
    "not json", "[]", "null", json.dumps({"id": 3}), "[" * 100_000,
    json.dumps({"id": "x", "data": {"eventType": "presence.update"}}),
    json.dumps({"id": "x", "data": {"eventType": "conversation.activity", "activity": []}}),
    frame("acknowledge"), frame("post", target={}), frame("post", id=None),
    frame("post", actor={"id": "x" * 1000}),
])
def test_frames_that_are_no_event_carry_no_activity(text):
    assert read_frame(text).activity is None


class FakeSocket:
    """Answers pings only when told to; records what was sent."""

    def __init__(self, answer_pings: bool) -> None:
        self.answer_pings = answer_pings
        self.sent: list[dict[str, Any]] = []
        self.inbox: list[str] = []
        self.now = 0.0

    def send(self, text: str) -> None:
        message = json.loads(text)
        self.sent.append(message)
        if message.get("type") == "ping" and self.answer_pings:
            self.inbox.append(json.dumps({"id": message["id"], "type": "pong"}))

    def recv(self, timeout: float) -> str:
        if self.inbox:
            return self.inbox.pop(0)
        self.now += timeout
        raise TimeoutError

    def close(self) -> None:
        pass


def connection(socket: FakeSocket) -> Connection:
    return Connection(socket, ping_interval=15, pong_timeout=14,  # type: ignore[arg-type]
                      clock=lambda: socket.now)


CONFIRMED = json.dumps({"id": "c-1", "data": {"eventType": "mercury.buffer_state"}})


def test_the_token_goes_in_the_first_frame_and_webex_confirms_it():
    socket = FakeSocket(answer_pings=True)
    socket.inbox = [CONFIRMED, frame("post")]
    opened = connection(socket)
    assert opened.authorize(Secret("the-token"), timeout=10)
    [first] = socket.sent
    assert first["type"] == "authorization" and first["data"] == {"token": "Bearer the-token"}
    assert socket.now == 0  # no waiting once confirmed
    event = opened.receive(timeout=1)
    assert event is not None and event.activity is not None


def test_an_event_before_any_buffer_state_shows_the_socket_authorized():
    socket = FakeSocket(answer_pings=True)
    socket.inbox = [frame("post"), CONFIRMED]
    opened = connection(socket)
    assert opened.authorize(Secret("the-token"), timeout=10) and socket.now == 0
    early = opened.receive(timeout=1)
    assert early is not None and early.activity is not None  # kept, not lost


def test_no_buffer_state_is_waited_for_a_bounded_time_only():
    socket = FakeSocket(answer_pings=True)
    opened = connection(socket)
    assert not opened.authorize(Secret("the-token"), timeout=10)
    assert socket.now == pytest.approx(10)
    assert opened.receive(timeout=1) is None  # the socket is used all the same


def test_pings_every_interval_and_pongs_keep_it_alive():
    socket = FakeSocket(answer_pings=True)
    alive = connection(socket)
    assert alive.receive(timeout=100) is None
    assert [m["type"] for m in socket.sent] == ["ping"] * 6  # at 15, 30, ... 90 s


def test_a_missing_pong_is_silence():
    socket = FakeSocket(answer_pings=False)
    with pytest.raises(Silent):
        connection(socket).receive(timeout=100)
    assert socket.now == pytest.approx(29)  # ping at 15 s, no pong by 29 s


def test_a_skipped_sequence_number_is_logged(caplog):
    socket = FakeSocket(answer_pings=True)
    socket.inbox = [frame("post").replace('"sequenceNumber": 7', f'"sequenceNumber": {n}')
                    for n in (7, 8, 11)]
    alive = connection(socket)
    for _ in range(3):
        alive.receive(timeout=1)
    assert "the sequence skipped" in caplog.text
    assert [r.missing for r in caplog.records if hasattr(r, "missing")] == [2]


def test_acknowledging_names_the_frame():
    socket = FakeSocket(answer_pings=True)
    connection(socket).ack("frame-9")
    assert socket.sent == [{"type": "ack", "messageId": "frame-9"}]
