"""The sandbox's Webex REST subset, exercised over real HTTP with the bot's token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from bot.devtools.sandbox import ApiError, Sandbox
from bot.devtools.sandbox.ids import raw_uuid
from tests.support.sandbox import bot_session

CARD = {
    "contentType": "application/vnd.microsoft.card.adaptive",
    "content": {"type": "AdaptiveCard", "version": "1.3", "body": []},
}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def api(sb: Sandbox) -> requests.Session:
    return bot_session(sb)


@pytest.fixture
def alice(sb: Sandbox) -> dict:
    return sb.add_person("alice@example.com", "Alice Example", timezone="Europe/Paris")


@pytest.fixture
def room(sb: Sandbox, alice: dict) -> dict:
    return sb.add_room("Clinic", members=[alice])


def post(api: requests.Session, sb: Sandbox, **body: object) -> requests.Response:
    return api.post(sb.webex_base_url + "messages", json=body)


def assert_webex_error(response: requests.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert fragment in body["message"]
    assert body["errors"] == [{"description": body["message"]}]
    assert body["trackingId"] == response.headers["Trackingid"]
    assert body["trackingId"].startswith("ROUTER_")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"}, {"Authorization": "x"}],
)
def test_requests_without_the_bot_token_get_401(sb: Sandbox, headers: dict) -> None:
    response = requests.get(sb.webex_base_url + "people/me", headers=headers)
    assert_webex_error(response, 401, "valid access token")


def test_urls_and_bot_identity(sb: Sandbox, api: requests.Session) -> None:
    assert sb.url.startswith("http://127.0.0.1:")
    assert sb.webex_base_url == sb.url + "/v1/"
    assert sb.broker_url == sb.url
    assert sb.bot_token.startswith("sandbox-bot-token-")
    me = api.get(sb.webex_base_url + "people/me").json()
    assert me == sb.bot
    assert me["emails"] == ["instant-connect@webex.bot"]
    assert (me["displayName"], me["type"], me["orgId"]) == ("Instant Connect", "bot", sb.org_id)
    assert raw_uuid(me["id"]).count("-") == 4


def test_people_by_id_with_and_without_timezone(sb: Sandbox, api: requests.Session) -> None:
    alice = sb.add_person("alice@example.com", "Alice Example", timezone="Europe/Paris")
    bob = sb.add_person("bob@example.com", "Bob Builder", org_id="other-org")
    got = api.get(sb.webex_base_url + f"people/{alice['id']}").json()
    assert got == alice
    assert (got["firstName"], got["lastName"], got["timezone"]) == (
        "Alice",
        "Example",
        "Europe/Paris",
    )
    got_bob = api.get(sb.webex_base_url + f"people/{bob['id']}").json()
    assert "timezone" not in got_bob and got_bob["orgId"] == "other-org"
    assert_webex_error(api.get(sb.webex_base_url + "people/nobody"), 404, "person")


def test_rooms_are_visible_only_with_the_bot_in_them(sb: Sandbox, api: requests.Session) -> None:
    alice = sb.add_person("alice@example.com", "Alice")
    room = sb.add_room("Clinic", members=[alice])
    private = sb.add_room("Private", members=[alice], with_bot=False)
    got = api.get(sb.webex_base_url + f"rooms/{room['id']}").json()
    assert got == room
    assert (got["type"], got["isLocked"], got["creatorId"]) == ("group", False, alice["id"])
    assert_webex_error(api.get(sb.webex_base_url + f"rooms/{private['id']}"), 404, "room")


def test_unknown_route_and_method_answer_in_webex_shape(sb: Sandbox, api: requests.Session) -> None:
    assert_webex_error(api.get(sb.url + "/messages"), 404, "not be found")
    assert_webex_error(api.patch(sb.webex_base_url + "messages"), 405, "PATCH")


def test_post_message_to_room_and_read_it_back(
    sb: Sandbox, api: requests.Session, room: dict
) -> None:
    response = post(api, sb, roomId=room["id"], markdown="**hi**", attachments=[CARD])
    assert response.status_code == 200
    message = response.json()
    assert message["roomId"] == room["id"] and message["roomType"] == "group"
    assert (message["personId"], message["personEmail"]) == (sb.bot["id"], sb.bot["emails"][0])
    assert (message["markdown"], message["text"]) == ("**hi**", "**hi**")
    assert message["html"].startswith("<p>") and message["attachments"] == [CARD]
    assert api.get(sb.webex_base_url + f"messages/{message['id']}").json() == message
    assert sb.messages_in(room) == [message]
    [recorded] = sb.requests_matching("POST", "/v1/messages")
    assert recorded.json == {"roomId": room["id"], "markdown": "**hi**", "attachments": [CARD]}


@pytest.mark.parametrize("key", ["toPersonId", "toPersonEmail"])
def test_post_to_a_person_uses_the_direct_space(
    sb: Sandbox, api: requests.Session, alice: dict, key: str
) -> None:
    value = alice["id"] if key == "toPersonId" else "ALICE@example.com"
    message = post(api, sb, **{key: value, "text": "hello"}).json()
    direct = sb.direct_room(alice)
    assert direct["type"] == "direct" and message["roomId"] == direct["id"]
    assert message["roomType"] == "direct" and "html" not in message
    assert post(api, sb, toPersonId=alice["id"], text="again").json()["roomId"] == direct["id"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"text": "no destination"}, 400, "Exactly one"),
        ({"roomId": "r", "toPersonEmail": "a@b.c", "text": "two"}, 400, "Exactly one"),
        ({"toPersonEmail": "stranger@example.com", "text": "x"}, 404, "person"),
        ({"roomId": 5, "text": "x"}, 400, "roomId"),
        ({"roomId": "nope", "text": "x"}, 404, "room"),
        ({"toPersonEmail": "alice@example.com"}, 400, "needs text"),
        ({"toPersonEmail": "alice@example.com", "text": 3}, 400, "text must be a string"),
        ({"toPersonEmail": "alice@example.com", "text": "x", "parentId": 1}, 400, "parentId"),
    ],
)
def test_post_message_refusals(
    sb: Sandbox, api: requests.Session, alice: dict, body: dict, status: int, fragment: str
) -> None:
    assert_webex_error(post(api, sb, **body), status, fragment)


def test_bot_cannot_post_into_a_space_it_is_not_in(
    sb: Sandbox, api: requests.Session, alice: dict
) -> None:
    private = sb.add_room("Private", members=[alice], with_bot=False)
    assert_webex_error(post(api, sb, roomId=private["id"], text="x"), 404, "room")


def test_non_json_body_is_refused(sb: Sandbox, api: requests.Session) -> None:
    response = api.post(sb.webex_base_url + "messages", data=b"{not json")
    assert_webex_error(response, 400, "not valid JSON")
    assert sb.requests[-1].json is None and sb.requests[-1].status == 400


@pytest.mark.parametrize("key", ["text", "markdown"])
def test_text_and_markdown_are_limited_to_7439_utf8_bytes(
    sb: Sandbox, api: requests.Session, room: dict, key: str
) -> None:
    fits = "é" * 3719 + "a"  # 7439 bytes, 3720 characters
    assert len(fits.encode()) == 7439
    assert post(api, sb, roomId=room["id"], **{key: fits}).status_code == 200
    too_big = post(api, sb, roomId=room["id"], **{key: fits + "a"})
    assert_webex_error(too_big, 400, "The request payload is too big")


@pytest.mark.parametrize(
    ("attachments", "fragment"),
    [
        ([CARD, CARD], "Only one attachment"),
        ([{**CARD, "contentType": "application/json"}], "contentType"),
        ([{**CARD, "content": {"type": "MessageCard"}}], "AdaptiveCard"),
        ([{**CARD, "content": "AdaptiveCard"}], "AdaptiveCard"),
        ({"not": "a list"}, "must be a list"),
    ],
)
def test_attachment_rules(
    sb: Sandbox, api: requests.Session, room: dict, attachments: object, fragment: str
) -> None:
    response = post(api, sb, roomId=room["id"], text="card", attachments=attachments)
    assert_webex_error(response, 400, fragment)


def test_thread_replies_go_to_roots_in_the_same_space(
    sb: Sandbox, api: requests.Session, alice: dict, room: dict
) -> None:
    root = sb.post_message(alice, room, "meet Follow-up")
    reply = post(api, sb, roomId=room["id"], text="in thread", parentId=root["id"]).json()
    assert reply["parentId"] == root["id"]
    nested = post(api, sb, roomId=room["id"], text="x", parentId=reply["id"])
    assert_webex_error(nested, 400, "not be a reply")
    other = sb.direct_room(alice)
    elsewhere = post(api, sb, roomId=other["id"], text="x", parentId=root["id"])
    assert_webex_error(elsewhere, 400, "same room")


def test_edit_up_to_ten_times_then_400(sb: Sandbox, api: requests.Session, room: dict) -> None:
    message = post(api, sb, roomId=room["id"], text="v0", attachments=[CARD]).json()
    url = sb.webex_base_url + f"messages/{message['id']}"
    for n in range(1, 11):
        edited = api.put(url, json={"roomId": room["id"], "text": f"v{n}"})
        assert edited.status_code == 200, edited.text
    assert edited.json()["text"] == "v10" and "updated" in edited.json()
    assert "attachments" not in edited.json()
    assert_webex_error(api.put(url, json={"roomId": room["id"], "text": "v11"}), 400, "10 times")
    assert api.get(url).json()["text"] == "v10"


def test_edit_replaces_a_card_and_checks_its_input(
    sb: Sandbox, api: requests.Session, alice: dict, room: dict
) -> None:
    message = post(api, sb, roomId=room["id"], text="form", attachments=[CARD]).json()
    url = sb.webex_base_url + f"messages/{message['id']}"
    done = {**CARD, "content": {"type": "AdaptiveCard", "version": "1.3", "body": [{"x": 1}]}}
    edited = api.put(url, json={"roomId": room["id"], "markdown": "done", "attachments": [done]})
    assert edited.json()["attachments"] == [done] and edited.json()["markdown"] == "done"
    assert_webex_error(api.put(url, json={"roomId": "other", "text": "x"}), 400, "roomId")
    assert_webex_error(api.put(url, json={"roomId": room["id"]}), 400, "text or markdown")
    assert_webex_error(api.put(url, json={"roomId": room["id"], "text": "é" * 4000}), 400, "big")
    theirs = sb.post_message(alice, room, "mine")
    their_url = sb.webex_base_url + f"messages/{theirs['id']}"
    assert_webex_error(api.put(their_url, json={"roomId": room["id"], "text": "x"}), 403, "author")


def test_delete_message(sb: Sandbox, api: requests.Session, alice: dict, room: dict) -> None:
    message = post(api, sb, roomId=room["id"], text="bye").json()
    url = sb.webex_base_url + f"messages/{message['id']}"
    response = api.delete(url)
    assert response.status_code == 204 and response.content == b""
    assert_webex_error(api.get(url), 404, "message")
    assert_webex_error(api.delete(url), 404, "message")
    assert sb.message(message["id"])["deleted"] is True
    assert sb.messages_in(room) == []
    theirs = sb.post_message(alice, room, "keep")
    assert_webex_error(api.delete(sb.webex_base_url + f"messages/{theirs['id']}"), 403, "author")
    assert sb.message("unknown") is None


def test_list_messages_in_a_direct_space_newest_first(
    sb: Sandbox, api: requests.Session, alice: dict
) -> None:
    direct = sb.direct_room(alice)
    ids = [sb.post_message(alice, direct, f"m{n}")["id"] for n in range(4)]
    listed = api.get(sb.webex_base_url + "messages", params={"roomId": direct["id"]}).json()
    assert [m["id"] for m in listed["items"]] == ids[::-1]
    page = api.get(sb.webex_base_url + "messages", params={"roomId": direct["id"], "max": 2})
    assert [m["id"] for m in page.json()["items"]] == ids[:1:-1]
    assert_webex_error(api.get(sb.webex_base_url + "messages"), 400, "roomId")
    bad_max = api.get(sb.webex_base_url + "messages", params={"roomId": direct["id"], "max": 0})
    assert_webex_error(bad_max, 400, "max")


def test_group_listing_needs_mentioned_people_me(
    sb: Sandbox, api: requests.Session, alice: dict, room: dict
) -> None:
    mentioned = sb.post_message(alice, room, "meet A")
    sb.post_message(alice, room, "chatter", mention_bot=False)
    reply = sb.post_message(alice, room, "meet B", parent_id=mentioned["id"])
    url = sb.webex_base_url + "messages"
    assert_webex_error(api.get(url, params={"roomId": room["id"]}), 403, "mentionedPeople=me")
    listed = api.get(url, params={"roomId": room["id"], "mentionedPeople": "me"}).json()
    assert [m["id"] for m in listed["items"]] == [reply["id"], mentioned["id"]]
    thread = api.get(
        url, params={"roomId": room["id"], "mentionedPeople": "me", "parentId": mentioned["id"]}
    ).json()
    assert [m["id"] for m in thread["items"]] == [reply["id"]]


@pytest.mark.parametrize("form", ["id", "uuid"])
def test_person_messages_mention_the_bot_in_groups(
    sb: Sandbox, alice: dict, room: dict, form: str
) -> None:
    message = sb.post_message(alice, room, "meet Follow-up", mention_form=form)
    object_id = sb.bot["id"] if form == "id" else raw_uuid(sb.bot["id"])
    assert message["html"] == (
        f'<p><spark-mention data-object-type="person" data-object-id="{object_id}">'
        "Instant</spark-mention> meet Follow-up</p>"
    )
    assert message["text"] == "Instant meet Follow-up"
    assert message["mentionedPeople"] == [sb.bot["id"]]


def test_person_messages_in_direct_spaces_have_no_mention(sb: Sandbox, alice: dict) -> None:
    message = sb.post_message(alice, sb.direct_room(alice), "meet <b>x</b>")
    assert (message["text"], message["html"]) == (
        "meet <b>x</b>",
        "<p>meet &lt;b&gt;x&lt;/b&gt;</p>",
    )
    assert "mentionedPeople" not in message


def test_person_must_be_in_the_space(sb: Sandbox, room: dict) -> None:
    stranger = sb.add_person("eve@example.com", "Eve")
    with pytest.raises(ApiError, match="404"):
        sb.post_message(stranger, room, "hi")


def test_attachment_actions_can_be_read_even_for_deleted_cards(
    sb: Sandbox, api: requests.Session, alice: dict, room: dict
) -> None:
    card = post(api, sb, roomId=room["id"], text="form", attachments=[CARD]).json()
    api.delete(sb.webex_base_url + f"messages/{card['id']}")
    action = sb.submit_card(alice, card["id"], {"subject": "X", "numGuest": "2"})
    got = api.get(sb.webex_base_url + f"attachment/actions/{action['id']}").json()
    assert got == action
    assert got["type"] == "submit" and got["inputs"] == {"subject": "X", "numGuest": "2"}
    assert (got["messageId"], got["personId"], got["roomId"]) == (
        card["id"],
        alice["id"],
        room["id"],
    )
    assert_webex_error(api.get(sb.webex_base_url + "attachment/actions/nope"), 404, "action")


def test_recording_masks_the_token_and_can_be_cleared(sb: Sandbox, api: requests.Session) -> None:
    api.get(sb.webex_base_url + "people/me", params={"x": "1"})
    [recorded] = sb.requests
    assert (recorded.method, recorded.path, recorded.query) == ("GET", "/v1/people/me", {"x": "1"})
    assert recorded.headers["Authorization"] == "Bearer ***"
    assert sb.bot_token not in repr(sb.requests)
    assert sb.requests_matching("GET", "/v1/people/*") == [recorded]
    assert sb.requests_matching("POST", "/v1/people/*") == []
    sb.clear_record()
    assert sb.requests == [] and sb.deliveries == []


def test_text_that_is_not_utf8_is_refused_with_400(sandbox: Sandbox) -> None:
    """A lone surrogate (possible in JSON) is a client error, not a server crash."""
    room = sandbox.add_room("Surrogates")
    response = requests.post(
        sandbox.webex_base_url + "messages",
        data=b'{"roomId": "' + room["id"].encode() + b'", "text": "bad \\ud800"}',
        headers={"Authorization": f"Bearer {sandbox.bot_token}",
                 "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
