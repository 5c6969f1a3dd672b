"""The people cache: one lookup per person, even when many threads ask at once."""

import threading

from bot.conversation.people import PeopleDirectory
from bot.upstream.webex import Person
from tests.support.webex import FakeWebex

SOMEONE = Person(id="P1", emails=("a@example.com",), display_name="A", org_id="O")


def slow_webex() -> FakeWebex:
    """Webex answering person lookups slowly: long enough for every thread to miss the cache
    together."""
    webex = FakeWebex(SOMEONE)
    webex.latency = 0.05
    return webex


def lookups(webex: FakeWebex) -> int:
    return sum(method == "person" for method, _ in webex.fetched)


def test_simultaneous_lookups_of_one_person_fetch_once():
    webex = slow_webex()
    people = PeopleDirectory(webex)
    found = []
    threads = [threading.Thread(target=lambda: found.append(people.get("P1"))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lookups(webex) == 1 and len(found) == 10 and {p.id for p in found} == {"P1"}


def test_a_stale_entry_is_fetched_again():
    webex = slow_webex()
    now = [0.0]
    people = PeopleDirectory(webex, ttl_seconds=60, clock=lambda: now[0])
    people.get("P1")
    now[0] = 59
    people.get("P1")
    assert lookups(webex) == 1
    now[0] = 61
    people.get("P1")
    assert lookups(webex) == 2
