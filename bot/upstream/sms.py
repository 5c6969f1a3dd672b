"""Text messages to guests, behind a small provider interface; Twilio's Messages API is the one
provider so far (REST, form-encoded, HTTP Basic auth with the account SID and auth token).

Usage::

    sms = TwilioSms(TwilioConfig(account_sid, Secret(auth_token), from_number="+15005550006"))
    reference = sms.send("+33612345678", "Your link: https://...")      # Twilio's message SID

With ``status_callback`` (the bot's public status URL), each message asks Twilio to report its
fate there later (sent, delivered, undelivered, failed); without it the bot knows only that
Twilio took the message for the carrier.

Creating a message is not idempotent: a 5xx, or an answer that never came, may follow a message
Twilio created. So before sending again, the client asks Twilio (the Messages list, filtered by
``To`` and ``DateSent``) whether a message with this body went to this number since the attempt,
and sends again only if not. When Twilio cannot be asked either, the message may have been
delivered: ``Unconfirmed``, never sent blindly. A 429, or a connection that was never made,
created nothing and is simply retried.

Twilio's error messages quote the number; the errors raised here keep only Twilio's error code
and what it means, so no number reaches a log line or a reply in a space.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests

from bot.errors import (
    MalformedResponse,
    Rejected,
    Timeout,
    Unavailable,
    Unconfirmed,
    UpstreamError,
    error_for_status,
    is_retryable,
    network_errors,
)
from bot.limits import UPSTREAM_TIMEOUT
from bot.secret import Secret
from bot.upstream.pool import DEFAULT_POOL_SIZE, pooled_session
from bot.upstream.retry import RetryPolicy, parse_retry_after

SERVICE = "Twilio"
CLOCK_SKEW = 120.0  # seconds Twilio's clock may trail ours when comparing creation times
LIST_PAGE_SIZE = 50
LIST_PAGES = 4  # pages of the Messages list read before the answer counts as unknown
# What Twilio's commonest refusals of one message mean, in words a person can act on.
TWILIO_CODES = {
    21211: "not a valid phone number",
    21408: "a country this account may not send to",
    21610: "the number has opted out of text messages (STOP)",
    21612: "the number is not reachable by text message",
    21614: "not a mobile number",
    20003: "the account SID or auth token is wrong",
    # What a status callback's ErrorCode says of a message the carrier did not deliver.
    30003: "the phone is off or out of reach",
    30004: "the message was blocked (the number may have opted out)",
    30005: "the number is unknown or no longer in service",
    30006: "a landline, or a carrier that cannot take text messages",
    30007: "the carrier filtered the message",
    30008: "an unknown error at the carrier",
}


def described_code(code: int | None) -> str:
    """Twilio's error code and, for the commonest, what it means; empty for none."""
    if code is None:
        return ""
    meaning = TWILIO_CODES.get(code)
    return f"Twilio error {code}: {meaning}" if meaning else f"Twilio error {code}"


class SmsSender(Protocol):
    """What the bot needs of an SMS provider: one message to one number, and its reference."""

    def send(self, to: str, body: str) -> str:
        """Send ``body`` to ``to`` (E.164); the provider's reference for the message."""

    def sent_since(self, to: str, body: str, since: float) -> str | None:
        """The reference of a message with ``body`` sent to ``to`` since the epoch time
        ``since``, or None; ``Unconfirmed`` when the provider cannot tell."""

    @property
    def reports_fate(self) -> bool:
        """Whether the provider will say later whether each message reached the phone."""


@dataclass(frozen=True)
class TwilioConfig:
    """A Twilio account and the number (or messaging service) messages come from."""

    account_sid: str
    auth_token: Secret
    from_number: str
    api_url: str = "https://api.twilio.com"
    status_callback: str | None = None  # where Twilio reports each message's fate
    timeout: float = UPSTREAM_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class TwilioSms:
    """``POST {api}/2010-04-01/Accounts/{sid}/Messages.json``, with bounded retries."""

    def __init__(self, config: TwilioConfig, *, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self._config = config
        self._session = pooled_session(pool_size)
        self._url = (f"{config.api_url.rstrip('/')}/2010-04-01/Accounts/"
                     f"{config.account_sid}/Messages.json")

    def __repr__(self) -> str:
        return f"TwilioSms(url={self._url!r})"

    @property
    def reports_fate(self) -> bool:
        """Twilio calls the status callback when the bot gave one."""
        return self._config.status_callback is not None

    def send(self, to: str, body: str) -> str:
        """Send one message, at most once; Twilio's message SID."""
        return self._config.retry.call(lambda: self._create_once(to, body),
                                       retryable=_worth_another_try, service="twilio")

    def sent_since(self, to: str, body: str, since: float) -> str | None:
        """The SID of a message with ``body`` Twilio created for ``to`` since ``since``."""
        return self._created_since(to, body, since)

    def _create_once(self, to: str, body: str) -> str:
        """One attempt; after a 5xx or a lost answer, the message Twilio made meanwhile, if any
        (raising the attempt's error when there is none, so that the retry sends it)."""
        started = time.time()
        try:
            return self._post(to, body)
        except (Unavailable, Timeout):
            sid = self._created_since(to, body, started)
            if sid is None:
                raise
            return sid

    @property
    def _auth(self) -> tuple[str, str]:
        return self._config.account_sid, self._config.auth_token.reveal()

    def _post(self, to: str, body: str) -> str:
        sender = self._config.from_number
        form = {"To": to, "Body": body,
                "MessagingServiceSid" if sender.startswith("MG") else "From": sender}
        if self._config.status_callback:
            form["StatusCallback"] = self._config.status_callback
        with network_errors(SERVICE, not_idempotent=True):
            response = self._session.post(self._url, data=form,
                                          auth=self._auth, timeout=self._config.timeout)
        answer = _json(response)
        if not response.ok:
            raise _error(response, answer)
        if not isinstance(answer, dict) or not isinstance(answer.get("sid"), str):
            raise MalformedResponse(SERVICE, status=response.status_code,
                                    detail="the answer has no message sid")
        return str(answer["sid"])

    def _created_since(self, to: str, body: str, started: float) -> str | None:
        """The SID of a message with ``body`` Twilio created for ``to`` since ``started``; None
        when there is none. ``DateSent`` filters by day (GMT), so the day is that of the
        attempt less the clock skew, and the creation time is compared here."""
        since = started - CLOCK_SKEW
        day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
        url: str | None = self._url
        params: dict[str, Any] | None = {"To": to, "DateSent>": day, "PageSize": LIST_PAGE_SIZE}
        for _ in range(LIST_PAGES):
            if url is None:
                return None
            page = self._list_page(url, params)
            for message in page.get("messages") or []:
                if _is_this_message(message, body, since):
                    return str(message["sid"])
            following = page.get("next_page_uri")
            url = self._config.api_url.rstrip("/") + following if following else None
            params = None  # the next page's URI carries them
        if url is None:
            return None
        raise Unconfirmed(SERVICE, detail="Twilio lists too many messages to that number "
                                          "today to tell")

    def _list_page(self, url: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """One page of the Messages list; Unconfirmed when Twilio cannot tell."""
        cannot_tell = "Twilio's answer was lost and Twilio could not be asked whether it sent it"
        try:
            with network_errors(SERVICE):
                response = self._session.get(url, params=params, auth=self._auth,
                                             timeout=self._config.timeout)
        except UpstreamError:
            raise Unconfirmed(SERVICE, detail=cannot_tell) from None
        page = _json(response)
        if not response.ok or not isinstance(page, dict):
            raise Unconfirmed(SERVICE, detail=cannot_tell)
        return page


def _worth_another_try(error: UpstreamError) -> bool:
    """After ``_create_once`` looked, a 5xx or a lost answer means nothing was created."""
    return is_retryable(error) or isinstance(error, Unavailable | Timeout)


def _is_this_message(message: object, body: str, since: float) -> bool:
    """An outbound message with this body created since ``since`` (a trial account prefixes
    the body with its own words)."""
    if not isinstance(message, dict) or not isinstance(message.get("sid"), str):
        return False
    if not str(message.get("direction", "")).startswith("outbound"):
        return False
    if not str(message.get("body") or "").endswith(body):
        return False
    try:
        created = parsedate_to_datetime(str(message.get("date_created"))).timestamp()
    except (TypeError, ValueError):
        return False
    return created >= since


def _json(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _error(response: requests.Response, answer: object) -> UpstreamError:
    """A refusal in words: Twilio's code and what it means when it is one of the known ones;
    Twilio's generic codes (20000 + the HTTP status) add nothing to the status's own words."""
    code = answer.get("code") if isinstance(answer, dict) else None
    detail = ""
    if isinstance(code, int) and (code in TWILIO_CODES or code != 20000 + response.status_code):
        detail = described_code(code)
    if response.status_code in (401, 403):  # not the bot's token: Twilio's own account
        return Rejected(SERVICE, status=response.status_code, detail=detail or
                        "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return error_for_status(SERVICE, response.status_code, detail=detail,
                            retry_after=parse_retry_after(response.headers.get("Retry-After")))
