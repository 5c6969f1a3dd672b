"""A conversation in spaces hosted in Webex's second cluster (EU): ids there read
``ciscospark://urn:TEAM:eu-central-1_k/...``, and an id spelled with the US cluster is not found.

Over webhooks the ids come ready-made; over the websocket the listener has to find the cluster
from the activity's conversation URL and the service catalog's host map. Both must hold the
whole conversation, and an event arriving both ways must still be one event. The bot's own
organisation is in the US cluster here, and lets in a partner organisation hosted in the EU
(``ALLOWED_ORG_IDS``): one bot, spaces in both clusters at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from bot.conversation.access import AccessPolicy
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.ids import raw_uuid, webex_id
from bot.settings import Settings
from cards import inputs as ids
from tests.conftest import RunningBot, sandbox_settings, serve


@pytest.fixture(params=["webhooks", "websocket"])
def events(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def eu_org(sandbox: Sandbox) -> str:
    return sandbox.add_org("eu")


@pytest.fixture
def elsa(sandbox: Sandbox, eu_org: str) -> dict[str, Any]:
    return sandbox.add_person("elsa@klinik.example.de", "Elsa Arzt", org_id=eu_org,
                              timezone="Europe/Berlin")


def settings(sandbox: Sandbox, tmp_path: Any, eu_org: str, events: str) -> Settings:
    return sandbox_settings(sandbox, tmp_path, events=events,
                            access=AccessPolicy(allowed_org_ids=frozenset({eu_org})))


@pytest.fixture
def running_bot(sandbox: Sandbox, tmp_path: Any, eu_org: str, events: str
                ) -> Iterator[RunningBot]:
    yield from serve(sandbox, settings(sandbox, tmp_path, eu_org, events))


def in_eu(record: dict[str, Any], kind: str) -> bool:
    return record["id"] == webex_id(kind, raw_uuid(record["id"]), "eu")


def test_a_whole_conversation_in_the_second_cluster(running_bot, sandbox, elsa):
    alice = sandbox.add_person("alice@clinic.example.com", "Alice Doctor")
    dm, alice_dm = sandbox.direct_room(elsa), sandbox.direct_room(alice)
    assert in_eu(dm, "ROOM") and not in_eu(alice_dm, "ROOM")
    sandbox.post_message(elsa, dm, "help")
    sandbox.post_message(alice, alice_dm, "help")
    [reply] = running_bot.wait_for_bot_messages(dm, 1)
    assert "meet <subject>" in reply["markdown"] and in_eu(reply, "MESSAGE")
    running_bot.wait_for_bot_messages(alice_dm, 1)  # the US cluster's spaces as before

    station = sandbox.add_room("Station 3", members=[elsa], with_bot=False)
    sandbox.add_bot_to_room(station, by=elsa)
    [hello] = running_bot.wait_for_bot_messages(station, 1)
    assert hello["markdown"].startswith("Hello!")

    sandbox.post_message(elsa, station, "new", mention_bot=True)
    running_bot.idle()
    form = running_bot.wait_for_bot_messages(station, 2)[-1]
    assert "Europe/Berlin" in str(form["attachments"][0]["content"])
    sandbox.submit_card(elsa, form["id"], {
        ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Visite", ids.HOSTS: "1", ids.GUESTS: "1",
        ids.SHORT_LINKS: "true", ids.VERTICAL: "hc", ids.HOST_LOGIN: "false",
        ids.START_DATE: (date.today() + timedelta(days=3)).isoformat(), ids.START_TIME: "10:00",
        ids.VALID_FOR: "2h", ids.PRIVATE_HOST_LINKS: "true",
    })
    running_bot.idle()
    assert sandbox.message(form["id"])["deleted"]
    assert any("Guest 1" in m.get("markdown", "") for m in running_bot.bot_messages(station))
    assert any("Host 1" in m.get("markdown", "") for m in running_bot.bot_messages(dm))
    assert len(sandbox.requests_matching("POST", "/api/v2/joseencrypt")) == 1


def test_an_event_of_the_second_cluster_arriving_both_ways_is_one_event(
    sandbox: Sandbox, tmp_path: Any, eu_org: str, elsa: dict[str, Any]
) -> None:
    dm = sandbox.direct_room(elsa)
    with contextlib.contextmanager(serve)(sandbox, settings(sandbox, tmp_path, eu_org,
                                                            "both")) as bot:
        sandbox.post_message(elsa, dm, "help")
        bot.wait_for_bot_messages(dm, 1)
        bot.idle()
        assert len(bot.bot_messages(dm)) == 1
        counts = bot.service.listener.counts
        assert (counts["accepted"], counts["duplicate"]) in ((1, 0), (0, 1))
        assert counts["lookup failed"] == 0
        assert [d.status for d in sandbox.deliveries if d.resource == "messages"][:1] == [200]
