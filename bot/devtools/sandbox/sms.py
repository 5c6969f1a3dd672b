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

``GET`` on the same path lists the account's messages, newest first, as Twilio's Messages list
does: filtered by ``To``, ``From`` and ``DateSent`` (a GMT day, ``YYYY-MM-DD``, or an ISO date
and time read as its day; ``DateSent>`` and ``DateSent<`` mean on or after, on or before, that
day's midnight), paged by ``PageSize`` (50, at most 1000), ``Page`` and ``PageToken``, with
``next_page_uri`` while more follow. The sandbox hands a message to the carrier at once: the
list shows it "sent", ``date_sent`` its creation time.

A message created with ``StatusCallback`` (an http or https URL, else 21609) has its fate
reported there later, signed, as ``sms_status`` describes.

Twilio's own failures (``TwilioFault``), consumed one create at a time: "after_create" keeps
the message and answers a 5xx all the same (Twilio's answer lost after it acted; creating is
not idempotent), "before_create" answers the 5xx and keeps nothing.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .faults import use_up
from .journal import Journal
from .responses import Call
from .sms_status import Reported, StatusCallbacks

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
FAULT_KINDS = ("after_create", "before_create")
PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


@dataclass(frozen=True)
class SentSms:
    """One message Twilio accepted (201); from_ is the number it goes out from."""

    sid: str
    to: str
    from_: str
    body: str
    messaging_service_sid: str | None = None
    status_callback: str | None = None


@dataclass
class TwilioFault:
    """Twilio failing the next ``times`` creates (None: until cleared) with ``status``: after
    creating the message ("after_create") or before ("before_create")."""

    kind: str
    status: int = 500
    times: int | None = 1

    def __post_init__(self) -> None:
        """Refuse faults that would do nothing or make no sense."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Twilio fault kind must be one of {', '.join(FAULT_KINDS)}: "
                             f"{self.kind!r}")
        if not 500 <= self.status <= 599:
            raise ValueError(f"a Twilio fault answers a 5xx, not {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")


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
    """How many SMS segments the body takes: GSM-7 (160 septets, or 153 a segment) when every
    character is in the GSM 03.38 alphabet, else UCS-2 (70 code units, or 67 a segment). An
    escape pair (GSM-7 extension) or a surrogate pair (UCS-2) is never split across segments."""
    if set(body) <= GSM7 | GSM7_EXTENDED:
        units, single, multi = [2 if c in GSM7_EXTENDED else 1 for c in body], 160, 153
    else:
        units, single, multi = [2 if ord(c) > 0xFFFF else 1 for c in body], 70, 67
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for unit in units:
        if used + unit > multi:
            count, used = count + 1, 0
        used += unit
    return count


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
        callbacks: StatusCallbacks,
    ) -> None:
        self._journal = journal
        self._lock = journal.lock
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messaging_service_sid = messaging_service_sid
        self.from_number = FROM_NUMBER
        self._rng = rng
        self._sent: list[SentSms] = []
        self._created: dict[str, datetime] = {}
        self._faults: list[TwilioFault] = []
        self._callbacks = callbacks

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule(
                f"{PREFIX}/{API_VERSION}/Accounts/<account_sid>/Messages.json",
                methods=["POST"],
                endpoint=self.create,
            ),
            Rule(
                f"{PREFIX}/{API_VERSION}/Accounts/<account_sid>/Messages.json",
                methods=["GET"],
                endpoint=self.read,
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
            self._created.clear()
            self._journal.changed()

    def add_fault(self, fault: TwilioFault) -> None:
        """Put a fault in force (after those already there)."""
        with self._lock:
            self._faults.append(fault)
            self._journal.changed()

    @property
    def faults(self) -> list[TwilioFault]:
        """Copies of the faults still in force."""
        with self._lock:
            return [dataclasses.replace(fault) for fault in self._faults]

    def clear_faults(self) -> None:
        """Remove every Twilio fault."""
        with self._lock:
            self._faults.clear()
            self._journal.changed()

    def create(self, call: Call) -> Response:
        """POST /2010-04-01/Accounts/{AccountSid}/Messages.json."""
        with self._lock:
            fault = use_up(self._faults, lambda fault: True)
        try:
            if fault is not None and fault.kind == "before_create":
                raise TwilioError(fault.status, 20000 + fault.status, "Internal Server Error")
            created = self._create(call)
            if fault is not None:  # after_create: the message is kept, the answer is an error
                raise TwilioError(fault.status, 20000 + fault.status, "Internal Server Error")
            return created
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
        callback = form.get("StatusCallback", "")
        if callback and not callback.startswith(("http://", "https://")):
            raise TwilioError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        resource = self._keep(to, body, sender, service, callback or None)
        if callback:
            self._callbacks.created(Reported(resource["sid"], callback, to,
                                             sender or self.from_number, service or None))
        return twilio_json(resource, 201)

    def read(self, call: Call) -> Response:
        """GET /2010-04-01/Accounts/{AccountSid}/Messages.json: newest first, filtered, paged."""
        try:
            return twilio_json(self._read(call), 200)
        except TwilioError as refused:
            return twilio_json(
                error_body(refused.status, refused.code, refused.message), refused.status
            )

    def _read(self, call: Call) -> dict[str, Any]:
        if call.args["account_sid"] != self.account_sid:
            path = call.request.path.removeprefix(PREFIX)
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        query = call.request.args
        size = _whole(query.get("PageSize", str(PAGE_SIZE)), "PageSize", 1, MAX_PAGE_SIZE)
        page = _whole(query.get("Page", "0"), "Page", 0, None)
        bounds = {name: _day(query[name]) for name in ("DateSent", "DateSent<", "DateSent>")
                  if name in query}
        with self._lock:
            found = [(sent, self._created[sent.sid]) for sent in reversed(self._sent)]
        found = [(sent, created) for sent, created in found
                 if query.get("To", sent.to) == sent.to
                 and query.get("From", sent.from_) == sent.from_
                 and _within(created, bounds)]
        token = query.get("PageToken", "")
        start = next((n + 1 for n, (sent, _) in enumerate(found) if f"PA{sent.sid}" == token),
                     page * size)
        shown = found[start:start + size]
        kept = {key: value for key, value in query.items() if key not in ("Page", "PageToken")}
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def uri(number: int, **more: str) -> str:
            return f"{path}?{urlencode({**kept, 'PageSize': size, 'Page': number, **more})}"

        following = (uri(page + 1, PageToken=f"PA{shown[-1][0].sid}")
                     if start + size < len(found) else None)
        return {
            "messages": [self._resource(sent, created, listed=True) for sent, created in shown],
            "end": start + max(len(shown) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": following,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": f"{path}?{urlencode(query)}",
        }

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

    def _keep(self, to: str, body: str, sender: str, service: str,
              callback: str | None) -> dict[str, Any]:
        """Record the message; its resource as Twilio answers a create."""
        with self._lock:
            sid = f"SM{self._rng.getrandbits(128):032x}"
            sent = SentSms(sid, to, sender or self.from_number, body, service or None, callback)
            created = datetime.now(UTC)
            self._sent.append(sent)
            self._created[sid] = created
            self._journal.changed()
        return self._resource(sent, created, listed=False)

    def _resource(self, sent: SentSms, created: datetime, *, listed: bool) -> dict[str, Any]:
        """A message as Twilio shows it: just created, or later in the list (sent by then)."""
        stamp = format_datetime(created)
        service = sent.messaging_service_sid
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sent.sid}"
        status = "sent" if listed else "accepted" if service else "queued"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": sent.body,
            "date_created": stamp,
            "date_sent": stamp if listed else None,
            "date_updated": stamp,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sent.from_ if listed or not service else None,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if service and not listed else str(segments(sent.body)),
            "price": None,
            "price_unit": "USD",
            "sid": sent.sid,
            "status": status,
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": sent.to,
            "uri": f"{base}.json",
        }


def _whole(text: str, name: str, lowest: int, highest: int | None) -> int:
    """A whole-number query parameter within bounds, or Twilio's 400."""
    if not text.isdigit() or int(text) < lowest or (highest is not None and int(text) > highest):
        raise TwilioError(400, 20001, f"Invalid {name}: {text}")
    return int(text)


def _day(text: str) -> datetime:
    """The GMT midnight a DateSent filter names (a date, or a date and time read as its day)."""
    try:
        day = datetime.strptime(text[:10], "%Y-%m-%d")
    except ValueError:
        raise TwilioError(400, 20001, f"Invalid DateSent: {text}") from None
    return day.replace(tzinfo=UTC)


def _within(created: datetime, bounds: dict[str, datetime]) -> bool:
    """Whether a message sent at ``created`` passes the DateSent filters."""
    if "DateSent" in bounds and not bounds["DateSent"] <= created < bounds["DateSent"] + \
            timedelta(days=1):
        return False
    if "DateSent>" in bounds and created < bounds["DateSent>"]:
        return False
    return not ("DateSent<" in bounds and created > bounds["DateSent<"])
