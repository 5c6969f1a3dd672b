"""Twilio's status callback: what became of a guest's text message, checked and queued.

Usage::

    status = TextStatusIntake(settings.sms.status_callback, settings.sms.auth_token, store,
                              max_backlog=settings.max_backlog, on_accepted=worker.notify)
    reply = status.receive(form, headers)      # form: each POST parameter's values

Twilio signs each callback (``X-Twilio-Signature``): base64 of the HMAC-SHA1, keyed with the
account's auth token, of the URL it called followed by every POST parameter, sorted by name,
as name and value run together. The URL is the one the bot gave Twilio (``PUBLIC_URL`` and
:data:`SMS_STATUS_PATH`), never the one a proxy hands the bot: behind TLS termination those
differ, and the signature is over Twilio's.

The answers: 403 unsigned or badly signed; 400 without a message SID and status; 404 for a
message the bot did not send (Twilio does not call again, and the error shows in Twilio's
console, where a misdirected callback should be seen); 503 when the store cannot take it; 200
for the rest, a repeat or a status with nothing to record (queued, accepted, sending) among
them. A status to record becomes a job, deduplicated by SID and status, which a worker turns
into the meeting's record and, for a text not delivered, one message to the space.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping, Sequence

from bot.events import TEXT_STATUS, Event
from bot.jobs.storage import BacklogFull, Store, StoreUnavailable
from bot.meetings.book import sent_text
from bot.meetings.record import FATES
from bot.secret import Secret
from bot.web.intake import Reply

log = logging.getLogger(__name__)

SMS_STATUS_PATH = "/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(url: str, form: Mapping[str, Sequence[str]], auth_token: str) -> str:
    """Twilio's signature of a POST to ``url`` with ``form`` (each parameter's values)."""
    signed = url + "".join(name + value for name in sorted(form)
                           for value in sorted(set(form[name])))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TextStatusIntake:
    """Turns one of Twilio's status callbacks into at most one durable job."""

    def __init__(self, url: str, auth_token: Secret, store: Store, *, max_backlog: int,
                 on_accepted: Callable[[], None] = lambda: None) -> None:
        self._url = url
        self._token = auth_token
        self._store = store
        self._max_backlog = max_backlog
        self._on_accepted = on_accepted

    def receive(self, form: Mapping[str, Sequence[str]], headers: Mapping[str, str]) -> Reply:
        """Decide the answer to one callback; queue what it says before saying 200."""
        given = {name.lower(): value for name, value in headers.items()}.get(
            SIGNATURE_HEADER.lower(), "")
        expected = twilio_signature(self._url, form, self._token.reveal())
        if not hmac.compare_digest(given.encode(), expected.encode()):
            log.warning("refused a status callback with a missing or wrong Twilio signature")
            return Reply(403, {"error": "invalid signature"})
        sid, status = _one(form, "MessageSid"), _one(form, "MessageStatus")
        if not sid or not status:
            return Reply(400, {"error": "MessageSid and MessageStatus are required"})
        try:
            if sent_text(self._store, sid) is None:
                log.warning("refused a status callback for a message the bot did not send")
                return Reply(404, {"error": "unknown message"})
            if status not in FATES:
                return Reply(200, {"status": "ignored"})
            code = _one(form, "ErrorCode")
            event = Event(*TEXT_STATUS, data_id=f"{sid}:{status}", data={
                "sid": sid, "status": status,
                "errorCode": int(code) if code.isdigit() and int(code) else None})
            accepted = self._store.accept(event.data_id, event.resource, event.to_json(),
                                          self._max_backlog)
        except BacklogFull:
            return Reply(503, {"error": "busy"})
        except StoreUnavailable:
            log.error("storage unavailable; a text message's status could not be kept")
            return Reply(503, {"error": "storage unavailable"})
        if not accepted:
            return Reply(200, {"status": "duplicate"})
        log.info("accepted a text message's status", extra={"status": status})
        self._on_accepted()
        return Reply(200, {"status": "accepted"})


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = form.get(name) or ()
    return values[0] if values else ""
