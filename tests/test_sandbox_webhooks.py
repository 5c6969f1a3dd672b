"""Webhooks in the sandbox: the REST resource with Link pagination, and signed deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Callable, Iterator

import pytest
import requests

from bot.devtools.sandbox import Sandbox
from tests.support.sandbox import Receiver, bot_session


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=3) as sandbox:
        yield sandbox


@pytest.fixture
def api(sb: Sandbox) -> requests.Session:
    return bot_session(sb)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def alice(sb: Sandbox) -> dict:
    return sb.add_person("alice@example.com", "Alice Example")


@pytest.fixture
def room(sb: Sandbox, alice: dict) -> dict:
    return sb.add_room("Clinic", members=[alice])


def hook_body(receiver: Receiver, **extra: str) -> dict:
    return {
        "name": "bot-messages",
        "targetUrl": receiver.url,
        "resource": "messages",
        "event": "created",
        **extra,
    }


def envelopes(receiver: Receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.received]


# ---- REST resource ---------------------------------------------------------------------


def test_create_get_update_delete(sb: Sandbox, api: requests.Session, receiver: Receiver) -> None:
    url = sb.webex_base_url + "webhooks"
    created = api.post(url, json=hook_body(receiver, secret="s3cret", filter="roomType=direct"))
    assert created.status_code == 200
    hook = created.json()
    assert "secret" not in hook and hook["status"] == "active" and hook["ownedBy"] == "creator"
    assert (hook["createdBy"], hook["orgId"]) == (sb.bot["id"], sb.org_id)
    assert hook["filter"] == "roomType=direct"
    assert api.get(f"{url}/{hook['id']}").json() == hook
    renamed = api.put(
        f"{url}/{hook['id']}", json={"name": "renamed", "secret": "new", "status": "active"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "renamed" and "secret" not in renamed.json()
    refused = api.put(f"{url}/{hook['id']}", json={"status": "inactive"})
    assert refused.status_code == 400 and "active" in refused.json()["message"]
    assert api.delete(f"{url}/{hook['id']}").status_code == 204
    assert api.get(f"{url}/{hook['id']}").status_code == 404
    assert api.delete(f"{url}/{hook['id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"targetUrl": None}, "targetUrl"),
        ({"resource": "people"}, "resource"),
        ({"event": "exploded"}, "event"),
        ({"filter": "color=blue"}, "filter"),
        ({"filter": 3}, "filter"),
        ({"secret": ["x"]}, "secret"),
    ],
)
def test_create_refusals(
    sb: Sandbox, api: requests.Session, receiver: Receiver, change: dict, fragment: str
) -> None:
    body = {k: v for k, v in {**hook_body(receiver), **change}.items() if v is not None}
    response = api.post(sb.webex_base_url + "webhooks", json=body)
    assert response.status_code == 400 and fragment in response.json()["message"]


def test_list_is_paginated_with_link_headers(
    sb: Sandbox, api: requests.Session, receiver: Receiver
) -> None:
    ids = [
        sb.register_webhook(receiver.url, None, "messages", "created", name=f"h{n}")["id"]
        for n in range(5)
    ]
    sb.register_webhook(receiver.url, "x", "messages", "created", owner_token="another-app")
    url: str | None = sb.webex_base_url + "webhooks?max=2"
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200
        pages.append([h["id"] for h in response.json()["items"]])
        url = response.links.get("next", {}).get("url")
        if url:
            assert url.startswith(sb.url + "/v1/webhooks?") and "max=2" in url
            assert response.headers["Link"].endswith('>; rel="next"')
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    everything = api.get(sb.webex_base_url + "webhooks")
    assert [h["id"] for h in everything.json()["items"]] == ids and "Link" not in everything.headers
    assert api.get(sb.webex_base_url + "webhooks", params={"cursor": "garbage"}).status_code == 400


def test_other_apps_webhooks_are_invisible(
    sb: Sandbox, api: requests.Session, receiver: Receiver
) -> None:
    theirs = sb.register_webhook(
        receiver.url, "x", "messages", "created", owner_token="another-app"
    )
    assert theirs["createdBy"] != sb.bot["id"]
    assert api.get(sb.webex_base_url + "webhooks").json()["items"] == []
    assert api.get(sb.webex_base_url + f"webhooks/{theirs['id']}").status_code == 404


# ---- deliveries ------------------------------------------------------------------------


def test_delivery_is_signed_over_the_exact_body(
    sb: Sandbox, receiver: Receiver, alice: dict, room: dict
) -> None:
    hook = sb.register_webhook(receiver.url, "s3cret", "messages", "created", name="bot-messages")
    message = sb.post_message(alice, room, "meet Follow-up")
    [received] = receiver.received
    expected = hmac.new(b"s3cret", received.body, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(received.headers["X-Spark-Signature"], expected)
    assert received.headers["Content-Type"] == "application/json"
    envelope = json.loads(received.body)
    assert {k: envelope[k] for k in ("id", "name", "resource", "event", "targetUrl")} == {
        "id": hook["id"],
        "name": "bot-messages",
        "resource": "messages",
        "event": "created",
        "targetUrl": receiver.url,
    }
    assert (envelope["status"], envelope["ownedBy"], envelope["actorId"]) == (
        "active",
        "creator",
        alice["id"],
    )
    assert (envelope["orgId"], envelope["createdBy"]) == (sb.org_id, sb.bot["id"])
    assert envelope["data"] == {
        "id": message["id"],
        "roomId": room["id"],
        "roomType": "group",
        "personId": alice["id"],
        "personEmail": "alice@example.com",
        "created": message["created"],
        "mentionedPeople": [sb.bot["id"]],
    }
    [delivery] = sb.deliveries
    assert (delivery.webhook_id, delivery.resource, delivery.event) == (
        hook["id"],
        "messages",
        "created",
    )
    assert (delivery.data_id, delivery.status) == (message["id"], 200)
    assert delivery.elapsed_seconds >= 0


def test_no_signature_without_a_secret(sb: Sandbox, receiver: Receiver, alice: dict) -> None:
    sb.register_webhook(receiver.url, None, "messages", "created")
    sb.post_message(alice, sb.direct_room(alice), "hi")
    [received] = receiver.received
    assert "X-Spark-Signature" not in received.headers


def test_group_messages_reach_the_bot_only_when_they_mention_it(
    sb: Sandbox, receiver: Receiver, alice: dict, room: dict
) -> None:
    sb.register_webhook(receiver.url, "s", "messages", "created")
    sb.post_message(alice, room, "just chatting", mention_bot=False)
    assert receiver.received == [] and sb.deliveries == []
    root = sb.post_message(alice, room, "meet A")
    reply = sb.post_message(alice, room, "meet B", parent_id=root["id"])
    direct = sb.post_message(alice, sb.direct_room(alice), "no mention needed")
    data = [e["data"] for e in envelopes(receiver)]
    assert [d["id"] for d in data] == [root["id"], reply["id"], direct["id"]]
    assert "parentId" not in data[0] and data[1]["parentId"] == root["id"]
    assert "mentionedPeople" not in data[2] and data[2]["roomType"] == "direct"


@pytest.mark.parametrize(
    ("make_filter", "delivered"),
    [
        (lambda room, alice: f"roomId={room['id']}", ["group"]),
        (lambda room, alice: "roomId=elsewhere", []),
        (lambda room, alice: "roomType=direct", ["direct"]),
        (lambda room, alice: "mentionedPeople=me", ["group"]),
        (lambda room, alice: f"personId={alice['id']}&roomType=group", ["group"]),
        (lambda room, alice: "personEmail=bob@example.com", []),
    ],
)
def test_filters(
    sb: Sandbox,
    receiver: Receiver,
    alice: dict,
    room: dict,
    make_filter: Callable[[dict, dict], str],
    delivered: list[str],
) -> None:
    sb.register_webhook(receiver.url, "s", "messages", "created", filter=make_filter(room, alice))
    sent = {
        "group": sb.post_message(alice, room, "meet A")["id"],
        "quiet": sb.post_message(alice, room, "quiet", mention_bot=False)["id"],
        "direct": sb.post_message(alice, sb.direct_room(alice), "hello")["id"],
    }
    # "quiet" never reaches the bot: a group message without a mention, whatever the filter.
    assert [e["data"]["id"] for e in envelopes(receiver)] == [sent[name] for name in delivered]


def test_bots_own_direct_messages_come_back_but_not_its_group_ones(
    sb: Sandbox, api: requests.Session, receiver: Receiver, alice: dict, room: dict
) -> None:
    sb.register_webhook(receiver.url, "s", "messages", "created")
    in_group = api.post(
        sb.webex_base_url + "messages", json={"roomId": room["id"], "text": "links"}
    )
    in_direct = api.post(
        sb.webex_base_url + "messages", json={"toPersonId": alice["id"], "text": "hi"}
    )
    own_id = in_direct.json()["id"]
    [delivery] = sb.wait_for(lambda: [d for d in sb.deliveries if d.data_id == own_id])
    assert delivery.status == 200
    assert [e["data"]["id"] for e in envelopes(receiver)] == [own_id]
    assert envelopes(receiver)[0]["data"]["personId"] == sb.bot["id"]
    assert in_group.json()["id"] not in {d.data_id for d in sb.deliveries}


def test_card_submits_are_delivered_without_inputs(
    sb: Sandbox, api: requests.Session, receiver: Receiver, alice: dict, room: dict
) -> None:
    card = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard"},
    }
    message = api.post(
        sb.webex_base_url + "messages",
        json={"roomId": room["id"], "text": "f", "attachments": [card]},
    ).json()
    sb.register_webhook(
        receiver.url, "s", "attachmentActions", "created", filter=f"messageId={message['id']}"
    )
    action = sb.submit_card(alice, message["id"], {"subject": "X"})
    [envelope] = envelopes(receiver)
    assert envelope["resource"] == "attachmentActions" and envelope["actorId"] == alice["id"]
    assert envelope["data"] == {
        "id": action["id"],
        "type": "submit",
        "messageId": message["id"],
        "personId": alice["id"],
        "roomId": room["id"],
        "created": action["created"],
    }


def test_adding_the_bot_delivers_a_membership(sb: Sandbox, receiver: Receiver, alice: dict) -> None:
    sb.register_webhook(receiver.url, "s", "memberships", "all")
    room = sb.add_room("Later", members=[alice], with_bot=False)
    membership = sb.add_bot_to_room(room, by=alice)
    [envelope] = envelopes(receiver)
    assert (envelope["event"], envelope["actorId"]) == ("created", alice["id"])
    assert envelope["data"] == membership
    assert membership["personId"] == sb.bot["id"] and membership["isModerator"] is False
    assert membership["roomType"] == "group" and membership["personOrgId"] == sb.org_id


def test_inactive_webhooks_get_nothing_until_reactivated(
    sb: Sandbox, api: requests.Session, receiver: Receiver, alice: dict
) -> None:
    hook = sb.register_webhook(receiver.url, "s", "messages", "created")
    sb.disable_webhook(hook)
    assert api.get(sb.webex_base_url + f"webhooks/{hook['id']}").json()["status"] == "inactive"
    sb.post_message(alice, sb.direct_room(alice), "lost")
    assert receiver.received == []
    api.put(sb.webex_base_url + f"webhooks/{hook['id']}", json={"status": "active"})
    sb.post_message(alice, sb.direct_room(alice), "found")
    assert len(receiver.received) == 1


def test_unreachable_targets_and_errors_are_recorded(sb: Sandbox, alice: dict) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sb.register_webhook(f"http://127.0.0.1:{closed_port}/x", "s", "messages", "created")
    with Receiver(status=500) as failing:
        sb.register_webhook(failing.url, "s", "messages", "created")
        sb.post_message(alice, sb.direct_room(alice), "hello")
    assert sorted(d.status for d in sb.deliveries) == [0, 500]


def test_deliver_can_forge_signatures_and_bodies(sb: Sandbox, receiver: Receiver) -> None:
    hook = sb.register_webhook(receiver.url, "s3cret", "messages", "created")
    data = {"id": "m1", "personId": "p1"}
    honest = sb.deliver(hook, data)
    replay = sb.deliver(hook["id"], data)
    forged = sb.deliver(hook, data, signature_override="0" * 40)
    tampered = sb.deliver(hook, data, body_override=b'{"tampered": true}')
    first, second, third, fourth = receiver.received
    assert first == second and honest.body == replay.body == first.body
    assert json.loads(first.body)["actorId"] == "p1"
    assert third.headers["X-Spark-Signature"] == "0" * 40 and forged.signature == "0" * 40
    assert fourth.body == b'{"tampered": true}' == tampered.body
    assert (
        fourth.headers["X-Spark-Signature"]
        == hmac.new(b"s3cret", fourth.body, hashlib.sha1).hexdigest()
    )
    assert [d.status for d in sb.deliveries] == [200, 200, 200, 200]
