"""The people cache: one lookup per person, even when many threads ask at once."""

import threading
import time

from bot.conversation.people import PeopleDirectory
from bot.upstream.webex import Person


class CountingWebex:
    """Answers person lookups slowly, counting them."""

    def __init__(self) -> None:
        self.calls = 0

    def person(self, person_id: str) -> Person:
        self.calls += 1
        time.sleep(0.05)  # long enough for every thread to miss the cache together
        return Person(id=person_id, emails=("a@example.com",), display_name="A", org_id="O")


def test_simultaneous_lookups_of_one_person_fetch_once():
    webex = CountingWebex()
    people = PeopleDirectory(webex)  # type: ignore[arg-type]
    found = []
    threads = [threading.Thread(target=lambda: found.append(people.get("P1"))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert webex.calls == 1 and len(found) == 10 and {p.id for p in found} == {"P1"}


def test_a_stale_entry_is_fetched_again():
    webex = CountingWebex()
    now = [0.0]
    people = PeopleDirectory(webex, ttl_seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]
    people.get("P1")
    now[0] = 59
    people.get("P1")
    assert webex.calls == 1
    now[0] = 61
    people.get("P1")
    assert webex.calls == 2
