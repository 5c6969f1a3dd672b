"""What playing the demo found: a meeting cancelled from the person's 1:1 space is said in the
space where it was made, where everyone saw its links, and not only to the person."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.jobs.storage import Store
from cards import inputs as ids
from tests.support.conversation import ALICE, CLINIC, DM, NOW, Bot


def test_a_meeting_cancelled_from_the_1to1_space_is_said_in_its_space(store: Store) -> None:
    bot = Bot(store)
    bot.webex.members.add((CLINIC, ALICE.id))
    day = (datetime.fromtimestamp(NOW, ZoneInfo(ALICE.timezone)) + timedelta(days=1)).date()
    bot.say(f"meet Follow-up date={day} time=09:00 to=zoe@example.org", room=CLINIC,
            mention=True)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    bot.say("meetings", room=DM)
    listed = str(bot.webex.sent[-1]["id"])
    before = len(bot.webex.sent)
    bot.submit(listed, {ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: meeting.id},
               room=DM)
    told = {(sent.get("room_id"), "is cancelled" in sent["markdown"])
            for sent in bot.webex.sent[before:]}
    assert (CLINIC, True) in told  # where its links were posted
    assert (DM, True) in told  # and where the person pressed Cancel
    assert not any("zoe@example.org" in sent["markdown"] for sent in bot.webex.sent[before:]
                   if sent.get("room_id") == CLINIC)  # contacts masked in the group space
