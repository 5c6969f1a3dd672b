"""Twilio's Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``) under ``/twilio``.

Form-encoded ``To``, ``Body`` and ``From`` (or ``MessagingServiceSid``), HTTP Basic auth with
the account SID and auth token, answers and errors in Twilio's JSON shape. The sandbox behaves
like Twilio's test credentials: the only sender is the magic number +15005550006 (or the
sandbox's messaging service), and these magic numbers fail as Twilio documents them:

========================  ==========================================================
From +15005550001         21212 invalid From number
From +15005550008         21611 the From number's queue is full
From anything else        21606 not a number of this account
To +15005550001           21211 invalid To number
To +15005550002           21612 not reachable via SMS
To +15005550003           21408 no permission for that region
To +15005550004           21610 the recipient unsubscribed (STOP)
To +15005550009           21614 not a mobile number (incapable of receiving SMS)
========================  ==========================================================

Any other ``To`` must be E.164 (``+``, 8 to 15 digits, no leading 0) or gets 21211.
A missing ``To`` is 21604, a missing sender 21603, a missing ``Body`` 21602, a body over
1600 characters 21617. A message sent through the messaging service starts "accepted" with
``from`` null and ``num_segments`` "0", as Twilio's do; one sent from the number, "queued".
"""

from __future__ import annotations

import hmac
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .journal import Journal
from .responses import Call

PREFIX = "/twilio"
API_VERSION = "2010-04-01"
FROM_NUMBER = "+15005550006"
MAX_BODY = 1600
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")
MAGIC_FROM = {
    "+15005550001": (21212, "The 'From' number {number} is not a valid phone number."),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued "
                            "messages."),
}  # fmt: skip
NOT_OURS = (
    "The From phone number {number} is not a valid, SMS-capable inbound phone number or "
    "short code for your account."
)
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number {number} is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: {number}, is not currently reachable "
                            "using the 'From' phone number via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region "
                            "indicated by the 'To' number: {number}."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number {number} is not a valid mobile number"),
}  # fmt: skip
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SentSms:
    """One message Twilio accepted (201); from_ is the number it goes out from."""

    sid: str
    to: str
    from_: str
    body: str
    messaging_service_sid: str | None = None


class TwilioError(Exception):
    """A request Twilio refuses: HTTP status, Twilio error code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error shape."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def twilio_json(payload: object, status: int) -> Response:
    """A JSON answer as Twilio sends it."""
    return Response(json.dumps(payload), status, content_type="application/json; charset=utf-8")


def segments(body: str) -> int:
    """How many SMS segments the body takes: GSM-7 (160, or 153 each) or UCS-2 (70, or 67)."""
    if set(body) <= GSM7 | GSM7_EXTENDED:
        units, single, multi = sum(2 if c in GSM7_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // multi)


class TwilioApi:
    """The Messages resource of one Twilio account, and the messages it accepted."""

    prefix = PREFIX + "/"

    def __init__(
        self,
        journal: Journal,
        *,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str,
        rng: random.Random,
    ) -> None:
        self._journal = journal
        self._lock = journal.lock
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messaging_service_sid = messaging_service_sid
        self.from_number = FROM_NUMBER
        self._rng = rng
        self._sent: list[SentSms] = []

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule(
                f"{PREFIX}/{API_VERSION}/Accounts/<account_sid>/Messages.json",
                methods=["POST"],
                endpoint=self.create,
            ),
        ]

    # the Service protocol of the app ------------------------------------------------------

    def refusal(self, request: Request) -> Response | None:
        """401 with code 20003 unless Basic auth carries the account SID and auth token."""
        given = request.authorization
        good = (
            given is not None
            and given.type == "basic"
            and hmac.compare_digest((given.username or "").encode(), self.account_sid.encode())
            and hmac.compare_digest((given.password or "").encode(), self.auth_token.encode())
        )
        if good:
            return None
        response = self.error(401, "Authenticate")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response

    def error(self, status: int, message: str) -> Response:
        """An error in Twilio's shape; codes 20003 (401) and 20000 + status otherwise."""
        code = 20003 if status == 401 else 20000 + status
        return twilio_json(error_body(status, code, message), status)

    # the resource -------------------------------------------------------------------------

    @property
    def sent(self) -> list[SentSms]:
        """Messages accepted so far, oldest first."""
        with self._lock:
            return list(self._sent)

    def clear(self) -> None:
        """Forget the messages accepted."""
        with self._lock:
            self._sent.clear()
            self._journal.changed()

    def create(self, call: Call) -> Response:
        """POST /2010-04-01/Accounts/{AccountSid}/Messages.json."""
        try:
            return self._create(call)
        except TwilioError as refused:
            return twilio_json(
                error_body(refused.status, refused.code, refused.message), refused.status
            )

    def _create(self, call: Call) -> Response:
        """Validate as Twilio's test credentials do, keep the message, answer 201."""
        if call.args["account_sid"] != self.account_sid:
            path = call.request.path.removeprefix(PREFIX)
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        form = call.request.form
        to = form.get("To", "")
        body = form.get("Body", "")
        sender = form.get("From", "")
        service = form.get("MessagingServiceSid", "")
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if sender:
            self._check_sender(sender)
        else:
            self._check_service(service)
        if not body:
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise TwilioError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if to in MAGIC_TO:
            code, message = MAGIC_TO[to]
            raise TwilioError(400, code, message.format(number=to))
        if not E164.fullmatch(to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        return twilio_json(self._keep(to, body, sender, service), 201)

    def _check_sender(self, sender: str) -> None:
        """Only the magic number +15005550006 sends; other magic numbers fail their own way."""
        if sender == self.from_number:
            return
        code, message = MAGIC_FROM.get(sender, (21606, NOT_OURS))
        raise TwilioError(400, code, message.format(number=sender))

    def _check_service(self, service: str) -> None:
        """Only the sandbox's messaging service sends."""
        if not SERVICE_SID.fullmatch(service):
            raise TwilioError(400, 21705, "The Messaging Service Sid is invalid.")
        if service != self.messaging_service_sid:
            raise TwilioError(
                400, 21701, f"The Messaging Service {service} does not exist for this account."
            )

    def _keep(self, to: str, body: str, sender: str, service: str) -> dict[str, Any]:
        """Record the message; its resource as Twilio answers a create."""
        with self._lock:
            sid = f"SM{self._rng.getrandbits(128):032x}"
            self._sent.append(SentSms(sid, to, sender or self.from_number, body, service or None))
            self._journal.changed()
        stamp = format_datetime(datetime.now(UTC))
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": stamp,
            "date_sent": None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": "0" if service else str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": to,
            "uri": f"{base}.json",
        }
