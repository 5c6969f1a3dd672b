"""The meeting forms the bot posted: where each one lives, and the one meeting it may make.

A form is recorded when posted (its space, whether a group, its thread), so a submit knows
where to answer. Its meeting is claimed by the submit that creates it: a second press, or a
press by someone else, is told the links already exist; a claim whose creation failed is
released so the form can be tried again; a form that made its meeting is retired (deleted from
the space) so nobody presses it again.
"""

from __future__ import annotations

import json
from datetime import timedelta

from bot.conversation.context import Place
from bot.errors import Rejected
from bot.jobs.storage import Fact, Store
from bot.upstream.webex import Webex

# The store keys of forms: where each lives, and which submit made its meeting.
FORM = Fact("form", timedelta(days=14).total_seconds())
FORM_MEETING = Fact("meeting", FORM.lifetime)


class Forms:
    """The records and claims of posted forms, in the shared store."""

    def __init__(self, store: Store, webex: Webex) -> None:
        self._store = store
        self._webex = webex

    def record(self, form_id: str, place: Place) -> None:
        """Remember where a just-posted form lives."""
        record = {"room": place.room_id, "group": place.group, "thread": place.parent_id}
        self._store.set(FORM.key(form_id), json.dumps(record), FORM.lifetime)

    def place(self, form_id: str, room_id: str) -> Place | None:
        """Where the form posted in ``room_id`` lives; None if unknown there (expired, or the
        submit names a form of another space)."""
        raw = self._store.get(FORM.key(form_id))
        record = json.loads(raw) if raw else None
        if record is None or record.get("room") != room_id:
            return None
        return Place(room_id, record.get("group", True), record.get("thread"))

    def made_by_another(self, form_id: str, key: str) -> bool:
        """Whether the form's meeting was already made by another submit than ``key``."""
        owner = self._store.get(FORM_MEETING.key(form_id))
        return owner is not None and owner != key

    def claim(self, form_id: str, key: str) -> bool:
        """Claim the form's one meeting for submit ``key``; False if another submit has it."""
        owner = self._store.put_if_absent(FORM_MEETING.key(form_id), key, FORM_MEETING.lifetime)
        return owner is None or owner == key

    def release(self, form_id: str) -> None:
        """Let the form be tried again: making its meeting failed."""
        self._store.delete(FORM_MEETING.key(form_id))

    def retire(self, form_id: str) -> None:
        """Delete the used form from its space; gone already is fine."""
        try:
            self._webex.delete_message(form_id)
        except Rejected as error:
            if error.status != 404:
                raise

