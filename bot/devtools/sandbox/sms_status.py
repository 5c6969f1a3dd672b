"""Twilio's status callbacks: a message created with ``StatusCallback`` has its fate reported there.

As Twilio does, each report is a form POST (``MessageSid``, ``SmsSid``, ``MessageStatus``,
``SmsStatus``, ``AccountSid``, ``From``, ``To``, ``ApiVersion``, ``MessagingServiceSid`` when the
message went through one, ``ErrorCode`` for a message not delivered) signed in
``X-Twilio-Signature``: base64 of the HMAC-SHA1, keyed with the auth token, of the callback
URL as given followed by each parameter, sorted by name, name and value run together. No
report for the first status (queued or accepted), none repeated when the answer is an error.

What each message reports, in order, is the plan (``plan``): by default what Twilio usually
reports, "sent" then "delivered" after a pause like a carrier's ("queued" first for a message
sent through a messaging service, which Twilio reports as the service moves it on from
"accepted"); any sequence can be set, per number or for all,
out of order or repeated too, and an empty one reports nothing (the test then reports what it
wants with ``report``). ``route`` stands for the network between Twilio and the bot: a callback
URL under a public prefix reaches the bot at a local one, as through a TLS-terminating proxy,
while the signature stays over the URL Twilio was given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from dataclasses import dataclass

import requests

from .background import Background
from .journal import Journal

TIMEOUT_SECONDS = 10
DEFAULT_PLAN = ("sent", "delivered")
CARRIER_PAUSE = 0.5  # seconds before each report of the usual plan, as a carrier takes
STATUSES = ("queued", "accepted", "sending", "sent", "delivered", "undelivered", "failed")


@dataclass(frozen=True)
class Report:
    """One status to report: ``"undelivered:30003"`` reads as status and error code."""

    status: str
    error_code: int | None = None

    @classmethod
    def read(cls, text: str) -> Report:
        """A report from ``status`` or ``status:code``; ValueError for an unknown status."""
        status, _, code = text.partition(":")
        if status not in STATUSES:
            raise ValueError(f"a Twilio message status is one of {', '.join(STATUSES)}: "
                             f"{status!r}")
        return cls(status, int(code) if code else None)


@dataclass(frozen=True)
class Callback:
    """One report made: to which message, what it said, and the bot's HTTP answer (0: none)."""

    sid: str
    status: str
    error_code: int | None
    url: str
    answer: int
    signature: str
    form: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Reported:
    """A message created with a status callback: what a report needs of it."""

    sid: str
    url: str
    to: str
    from_: str
    messaging_service_sid: str | None


def _usual(message: Reported) -> tuple[tuple[Report, ...], float]:
    """What Twilio reports of a message that arrives, unless told otherwise."""
    usual = ("queued", *DEFAULT_PLAN) if message.messaging_service_sid else DEFAULT_PLAN
    return tuple(map(Report.read, usual)), CARRIER_PAUSE


def twilio_signature(url: str, form: dict[str, str], auth_token: str) -> str:
    """X-Twilio-Signature of a POST of ``form`` to ``url``."""
    signed = url + "".join(name + form[name] for name in sorted(form))
    return base64.b64encode(hmac.new(auth_token.encode(), signed.encode(),
                                     hashlib.sha1).digest()).decode()


Planned = tuple[Reported, tuple[Report, ...], float]
"""A message, the reports planned for it, and the pause before each."""


class StatusCallbacks:
    """Reports each message's fate to its callback, from one background thread, in order."""

    def __init__(self, journal: Journal, *, account_sid: str, auth_token: str,
                 stopping: threading.Event) -> None:
        self._journal = journal
        self._lock = journal.lock
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._stopping = stopping
        self._plans: dict[str | None, tuple[tuple[Report, ...], float]] = {}
        self._routes: dict[str, str] = {}
        self._messages: dict[str, Reported] = {}
        self._made: list[Callback] = []
        self._background: Background[Planned] = Background(
            "sandbox-twilio-status", self._make, journal)

    def plan(self, *statuses: str, to: str | None = None, pause: float = CARRIER_PAUSE) -> None:
        """What each message (to ``to``, or to any number) reports next, in this order, with
        ``pause`` seconds before each: ``"sent"``, ``"undelivered:30003"``, ... ."""
        reports = tuple(map(Report.read, statuses))
        with self._lock:
            self._plans[to] = (reports, pause)

    def route(self, public_prefix: str, local_prefix: str) -> None:
        """Deliver callbacks under ``public_prefix`` to ``local_prefix`` instead."""
        with self._lock:
            self._routes[public_prefix] = local_prefix

    def created(self, message: Reported) -> None:
        """A message was created with a callback: its plan starts once Twilio has answered."""
        with self._lock:
            self._messages[message.sid] = message
            reports, pause = self._plans.get(message.to) or self._plans.get(None) or \
                _usual(message)
        if reports:
            self._background.put((message, reports, pause))

    def report(self, sid: str, status: str) -> Callback:
        """Report one status of a message now (``"failed:30008"``), as Twilio would."""
        with self._lock:
            message = self._messages[sid]
        return self._call(message, Report.read(status))

    @property
    def made(self) -> list[Callback]:
        """Every report made so far, oldest first."""
        with self._lock:
            return list(self._made)

    @property
    def pending(self) -> bool:
        """Whether planned reports are still to be made."""
        return self._background.pending

    def clear(self) -> None:
        """Forget the messages and the reports made (plans and routes stay)."""
        with self._lock:
            self._messages.clear()
            self._made.clear()

    def start(self) -> None:
        self._background.start()

    def stop(self) -> None:
        """Stop after the report being made; the plans not yet reported are dropped."""
        self._background.stop()

    def _make(self, planned: Planned) -> None:
        message, reports, pause = planned
        for report in reports:
            if self._stopping.wait(pause):
                break
            self._call(message, report)

    def _call(self, message: Reported, report: Report) -> Callback:
        form = {
            "AccountSid": self._account_sid, "ApiVersion": "2010-04-01",
            "From": message.from_, "To": message.to,
            "MessageSid": message.sid, "SmsSid": message.sid,
            "MessageStatus": report.status, "SmsStatus": report.status,
        }
        if message.messaging_service_sid:
            form["MessagingServiceSid"] = message.messaging_service_sid
        if report.error_code is not None:
            form["ErrorCode"] = str(report.error_code)
        signature = twilio_signature(message.url, form, self._auth_token)
        try:
            answer = requests.post(self._reach(message.url), data=form, timeout=TIMEOUT_SECONDS,
                                   headers={"X-Twilio-Signature": signature}).status_code
        except requests.RequestException:
            answer = 0
        made = Callback(message.sid, report.status, report.error_code, message.url, answer,
                        signature, tuple(form.items()))
        with self._lock:
            self._made.append(made)
            self._journal.changed()
        return made

    def _reach(self, url: str) -> str:
        """Where the network takes a request for ``url``."""
        with self._lock:
            for public, local in self._routes.items():
                if url.startswith(public):
                    return local + url.removeprefix(public)
        return url
