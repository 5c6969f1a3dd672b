"""`python -m bot audit`: the audit trail as an operator exports it.

It reads the store alone (no token, no key), prints one row per thing done, oldest first, as CSV
or JSON on stdout and which store it read on stderr; no link or subject can appear, contacts
only masked; a store that is not there is said, not created, and one it cannot read exits 1.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bot.meetings.book
from bot.devtools.as_deployed import free_port
from bot.jobs.storage import Store, open_store
from bot.meetings.book import audit_trail
from tests.support.conversation import ALICE, CLINIC, THREAD, Bot

SUBJECT = "Zoë Martin follow-up"
COLUMNS = ["time", "meeting", "who", "where", "what", "detail"]


def run_audit(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("WEBEX_BOT_TOKEN", "MEETING_KEYS")}
    return subprocess.run([sys.executable, "-m", "bot", "audit", *args],
                          env={**env, "STORAGE_URL": url}, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bot.sqlite3"


@pytest.fixture
def harness(url: str) -> Iterator[Bot]:
    """The conversation over the store the command reads, its clock on the real one (the
    command reads the last 30 days of real time)."""
    store = open_store(url)
    made = Bot(store)
    made.advance(time.time() - made.now())
    yield made
    store.close()


def rows_of(csv_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_text)))


def test_the_export_has_no_subject_no_link_and_only_masked_contacts(
    harness: Bot, url: str, tmp_path: Path,
) -> None:
    harness.say(f'meet "{SUBJECT}" to=zoe.martin@example.org,+33612345678 private=no',
                room=CLINIC, parent_id=THREAD, mention=True)
    [meeting] = harness.book.listed(room_id=CLINIC, since=0, limit=5)
    assert meeting.links is not None
    secret = [SUBJECT, "Zoë", "Zoe", "zoe.martin", "12345678", "ic.example.test", meeting.links.sub,
              *(link.url for link in meeting.links.all)]

    for form in ("csv", "json"):
        done = run_audit(url, tmp_path, "--format", form)
        assert done.returncode == 0, done.stderr
        for text in secret:
            assert text not in done.stdout, (form, text)
        assert "z•••@example.org" in done.stdout and "+33 6 •• •• •• 78" in done.stdout
        assert done.stderr.startswith(f"audit trail in {tmp_path}/bot.sqlite3 since ")
        assert done.stderr.endswith(": 3 rows\n")

    rows = rows_of(run_audit(url, tmp_path).stdout)
    assert {row["what"] for row in rows} == {"created", "guest link sent"}
    assert all(row["meeting"] == meeting.id and row["who"] == ALICE.email
               and row["where"] == CLINIC for row in rows)
    assert sorted(row["detail"] for row in rows if row["what"] == "guest link sent") == [
        "guest 1 email z•••@example.org: sent", "guest 2 sms +33 6 •• •• •• 78: sent"]


def test_rows_come_oldest_first_within_since_as_csv_and_as_json(
    harness: Bot, url: str, tmp_path: Path,
) -> None:
    """Made now (created, guest link sent), one row 40 days before, two in the hours after."""
    harness.say("meet Consultation to=zoe@example.org")
    [meeting] = harness.book.listed(person_id=ALICE.id, since=0, limit=5)
    now = harness.now()
    for hours, what in ((-40 * 24, "old"), (1, "guest links resent"), (2, "cancelled")):
        harness.advance(now + hours * 3600 - harness.now())
        harness.book.audit(meeting, ALICE.email, CLINIC, what, row_id=what)

    csv_rows = rows_of(run_audit(url, tmp_path).stdout)
    assert list(csv_rows[0]) == COLUMNS
    whats = [row["what"] for row in csv_rows]  # "old" is older than the default 30 days
    assert sorted(whats[:2]) == ["created", "guest link sent"]
    assert whats[2:] == ["guest links resent", "cancelled"]
    times = [row["time"] for row in csv_rows]
    assert times == sorted(times)
    assert datetime.strptime(times[-1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) == (
        datetime.fromtimestamp(now + 7200, UTC).replace(microsecond=0))

    recent = json.loads(run_audit(url, tmp_path, "--since", "12h", "--format", "json").stdout)
    assert [row["what"] for row in recent] == whats
    assert recent[-1] == {"time": times[-1], "meeting": meeting.id, "who": ALICE.email,
                          "where": CLINIC, "what": "cancelled", "detail": ""}
    everything = rows_of(run_audit(url, tmp_path, "--since", "60d").stdout)
    assert [row["what"] for row in everything] == ["old", *whats]


def test_an_empty_trail_read_without_token_or_key(url: str, tmp_path: Path) -> None:
    open_store(url).close()
    as_csv = run_audit(url, tmp_path)
    assert (as_csv.returncode, as_csv.stdout.splitlines()) == (0, [",".join(COLUMNS)])
    assert as_csv.stderr.startswith(f"audit trail in {tmp_path}/bot.sqlite3 since ")
    assert as_csv.stderr.endswith(": 0 rows\n")
    as_json = run_audit(url, tmp_path, "--format", "json")
    assert (as_json.returncode, as_json.stdout) == (0, "[]\n")


def test_a_missing_store_is_said_and_not_created_and_bad_options_exit_2(tmp_path: Path) -> None:
    missing = run_audit("sqlite:///data/bot.sqlite3", tmp_path)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith(f"error: STORAGE_URL: there is no store at {tmp_path}/data/")
    assert list(tmp_path.iterdir()) == []
    for args in (("--since", "a month"), ("--format", "xml")):
        bad = run_audit("sqlite:///data/bot.sqlite3", tmp_path, *args)
        assert bad.returncode == 2 and bad.stderr.startswith("error: argument --")


def test_a_store_out_of_reach_exits_1_saying_which(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run_audit(url, tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1].startswith(f"error: cannot read the store at {url}: ")


def test_a_long_trail_is_read_whole_in_pages_oldest_first(
    store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several pages' worth, some rows at one instant: every row once, in order."""
    monkeypatch.setattr(bot.meetings.book, "AUDIT_PAGE", 4)
    start = 1_700_000_000.0
    times = [start + offset for offset in (0, 1, 1, 1, 2, 2, 3, 3, 3, 5, 8, 13, 13, 21)]
    times += [start + timedelta(days=day).total_seconds() for day in (30, 31, 200)]
    for number, at in enumerate(times):
        row = {"at": at, "meeting": f"m-{number}", "who": "a@b.c", "where": "r", "what": "x",
               "detail": ""}
        store.put_record("audit", f"row-{number:02}", json.dumps(row), at=at, tags=("all",))

    found = list(audit_trail(store, start))
    assert [row.at for row in found] == sorted(times)
    assert sorted(row.meeting for row in found) == sorted(f"m-{n}" for n in range(len(times)))
    assert [row.at for row in audit_trail(store, start + 3)] == sorted(times)[6:]
