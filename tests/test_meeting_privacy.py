"""Nothing a meeting keeps is in clear at rest, on either engine.

A meeting is made for two guests (an email address and a mobile number), its time changed, then
cancelled, through the conversation over a real store; the broker answers as the real one does
(long links carrying a JWE cipher, short links on ``instant.webex.com/visit/``). Then the bytes
the store left on disk are read as an attacker with the disk would read them: the SQLite file
and its write-ahead log (before any checkpoint: the store runs in WAL mode, so the log is where
the recent writes are), or Redis's snapshot (``SAVE``, uncompressed so that a byte search sees
every string) and its append-only file (every write, overwritten or not). No link, cipher, short
link, contact (or its digits) or subject may be found there; the meeting's id, which is meant to
be in clear, must be, so the search reads the data and not an empty file.

The search is shown able to fail: with sealing bypassed (a keyring whose seal is the identity)
the same scenario leaves every one of them in the same files.
"""

from __future__ import annotations

import re
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.jobs.runner import Attempt
from bot.jobs.storage import Store, open_store
from bot.meetings.sealing import Keyring
from bot.upstream.instant_connect import Link, MeetingLinks, MeetingRequest
from bot.upstream.webex import AttachmentAction
from cards import inputs as ids
from tests.support.conversation import ALICE, CLINIC, DM, THREAD, Bot, submit_event
from tests.support.faults import RedisProcess

SUBJECT = "Jeanne Dubois-Quentin follow-up"  # a patient's name, as subjects often carry
EMAIL = "zoe.leclerc@example.org"
PHONE = "+33612345678"  # typed as 06 12 34 56 78
SHORT_BASE = "https://instant.webex.com/visit/"


@dataclass
class Engine:
    """A store on one engine, and the bytes it keeps on disk."""

    store: Store
    at_rest: Callable[[], dict[str, bytes]]  # each file the engine keeps, by name


@pytest.fixture(params=["sqlite", "redis"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "bot.sqlite3"
        store = open_store(f"sqlite:///{path}")

        def sqlite_files() -> dict[str, bytes]:
            wal = path.with_name(path.name + "-wal")
            assert wal.exists() and wal.stat().st_size > 0  # read before any checkpoint
            return {path.name: path.read_bytes(), wal.name: wal.read_bytes()}

        yield Engine(store, sqlite_files)
        store.close()
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(tmp_path, "--rdbcompression", "no", "--dbfilename", "dump.rdb")
    server.start()
    store = open_store(f"{server.url}?prefix=bot-{uuid.uuid4().hex[:8]}:")

    def redis_files() -> dict[str, bytes]:
        client = redis.Redis.from_url(server.url)
        try:
            client.save()  # the snapshot, as a deployed Redis writes it
        finally:
            client.close()
        files = {str(file.relative_to(tmp_path)): file.read_bytes()
                 for file in sorted(tmp_path.rglob("*")) if file.is_file()
                 and file.name != "redis.log"}
        assert files["dump.rdb"] and any(name.endswith(".aof") and data
                                         for name, data in files.items())
        return files

    try:
        yield Engine(store, redis_files)
    finally:
        store.close()
        server.stop()


def with_ciphers(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> list[MeetingLinks]:
    """The broker's links as the real broker's read: a JWE cipher in each long link, a random
    short code on the broker's ``baseUrl``. Returns every set it makes."""
    made: list[MeetingLinks] = []
    fake = bot.meetings.create_links

    def real_looking(link: Link) -> Link:
        cipher = "eyJwMnMiOi" + ".".join(secrets.token_urlsafe(n) for n in (60, 40, 12, 90, 16))
        page = "login" if link.role == "host" else "talk"
        code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
                       for _ in range(7))
        return replace(link, url=f"https://instant.webex.com/gen/v1/{page}?int=jose&v=1&data="
                                 f"{cipher}", short_url=f"{SHORT_BASE}{code}")

    def create_links(request: MeetingRequest) -> MeetingLinks:
        links = fake(request)
        made.append(replace(links, hosts=tuple(map(real_looking, links.hosts)),
                            guests=tuple(map(real_looking, links.guests))))
        return made[-1]

    monkeypatch.setattr(bot.meetings, "create_links", create_links)
    return made


def press(bot: Bot, card: str, inputs: dict[str, Any]) -> None:
    action = AttachmentAction(f"action-{uuid.uuid4().hex[:8]}", card, ALICE.id, DM, inputs)
    bot.webex.actions[action.id] = action
    event = submit_event(action)
    assert bot.store.accept(event.data_id, event.resource, event.to_json())
    job = bot.store.claim("worker", 60.0)
    assert job is not None
    bot.conversation.process(Attempt(job, last=False))


def a_meetings_life(bot: Bot) -> str:
    """Made in the clinic's thread for two guests, moved to the next day, cancelled: every
    record, fact and audit row a meeting leaves. Returns the meeting's id."""
    bot.say(f'meet {SUBJECT} to="{EMAIL}, 06 12 34 56 78"', room=CLINIC, parent_id=THREAD,
            mention=True)
    bot.say("meetings")
    card = str(bot.webex.sent[-1]["id"])
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    press(bot, card, {ids.ACTION: ids.ACTION_CHANGE_TIME, ids.MEETING: meeting.id,
                      ids.meeting_input(ids.NEW_START_DATE, meeting.id): "2027-01-16",
                      ids.meeting_input(ids.NEW_START_TIME, meeting.id): "10:00"})
    press(bot, card, {ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: meeting.id})
    assert len(bot.mail.sent) == 3 and len(bot.sms.sent) == 3  # invited, moved, cancelled
    return meeting.id


def secrets_of(made: list[MeetingLinks]) -> dict[str, str]:
    """What must not be found in clear, by what it is."""
    kept = {"subject": SUBJECT, "subject's name": "Dubois-Quentin", "email": EMAIL,
            "email's mailbox": EMAIL.split("@")[0], "phone": PHONE,
            "phone's digits": PHONE.removeprefix("+"), "national digits": PHONE[3:],
            "phone as typed": "12 34 56 78"}
    for links in made:
        for link in links.all:
            assert link.short_url is not None
            name = f"{link.label} of {links.sub}"
            kept[f"{name}: link"] = link.url
            kept[f"{name}: cipher"] = link.url.partition("data=")[2]
            kept[f"{name}: short link"] = link.short_url
            kept[f"{name}: short code"] = link.short_url.removeprefix(SHORT_BASE)
    return kept


def found_in_clear(files: dict[str, bytes], kept: dict[str, str]) -> dict[str, list[str]]:
    """Each secret found in the files, and in which (case ignored)."""
    return {what: where for what, value in kept.items()
            if (where := [name for name, data in files.items()
                          if value.lower().encode() in data.lower()])}


def test_nothing_a_meeting_keeps_is_in_clear_at_rest(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = Bot(engine.store)
    made = with_ciphers(bot, monkeypatch)
    meeting_id = a_meetings_life(bot)
    files = engine.at_rest()
    assert len(made) == 2  # the links made, then the new links for the new time
    assert found_in_clear(files, secrets_of(made)) == {}
    assert found_in_clear(files, {"meeting id": meeting_id})  # the search reads the data


def test_the_search_finds_every_secret_when_sealing_is_bypassed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Keyring, "seal", lambda self, plain, context: "plain." + plain.decode())
    monkeypatch.setattr(Keyring, "open", lambda self, sealed, context: sealed.removeprefix(
        "plain.").encode())
    bot = Bot(engine.store)
    made = with_ciphers(bot, monkeypatch)
    a_meetings_life(bot)
    kept = secrets_of(made)
    found = found_in_clear(engine.at_rest(), kept)
    assert set(found) == set(kept) - {"phone as typed"}  # kept in E.164 only
    assert all(re.fullmatch(r"bot\.sqlite3(-wal)?|dump\.rdb|.*\.aof", name)
               for where in found.values() for name in where)
