"""Text messages to guests, behind a small provider interface; Twilio's Messages API is the one
provider so far (REST, form-encoded, HTTP Basic auth with the account SID and auth token).

Usage::

    sms = TwilioSms(TwilioConfig(account_sid, Secret(auth_token), from_number="+15005550006"))
    reference = sms.send("+33612345678", "Your link: https://...")      # Twilio's message SID

Twilio's error messages quote the number; the errors raised here keep only Twilio's error code
and what it means, so no number reaches a log line or a reply in a space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.errors import MalformedResponse, Rejected, error_for_status, network_errors
from bot.secret import Secret
from bot.upstream.pool import DEFAULT_POOL_SIZE, pooled_session
from bot.upstream.retry import RetryPolicy, parse_retry_after

SERVICE = "Twilio"
# What Twilio's commonest refusals of one message mean, in words a person can act on.
TWILIO_CODES = {
    21211: "not a valid phone number",
    21408: "a country this account may not send to",
    21610: "the number has opted out of text messages (STOP)",
    21612: "the number is not reachable by text message",
    21614: "not a mobile number",
    20003: "the account SID or auth token is wrong",
}


class SmsSender(Protocol):
    """What the bot needs of an SMS provider: one message to one number, and its reference."""

    def send(self, to: str, body: str) -> str:
        """Send ``body`` to ``to`` (E.164); the provider's reference for the message."""


@dataclass(frozen=True)
class TwilioConfig:
    """A Twilio account and the number (or messaging service) messages come from."""

    account_sid: str
    auth_token: Secret
    from_number: str
    api_url: str = "https://api.twilio.com"
    timeout: float = 20.0
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

    def send(self, to: str, body: str) -> str:
        """Send one message; Twilio's message SID."""
        return self._config.retry.call(lambda: self._post(to, body))

    def _post(self, to: str, body: str) -> str:
        sender = self._config.from_number
        origin = {"MessagingServiceSid" if sender.startswith("MG") else "From": sender}
        with network_errors(SERVICE):
            response = self._session.post(
                self._url, data={"To": to, "Body": body, **origin},
                auth=(self._config.account_sid, self._config.auth_token.reveal()),
                timeout=self._config.timeout,
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not response.ok:
            code = answer.get("code") if isinstance(answer, dict) else None
            meaning = TWILIO_CODES.get(code, "refused") if isinstance(code, int) else ""
            detail = f"Twilio error {code}: {meaning}" if code else ""
            if response.status_code in (401, 403):  # not the bot's token: Twilio's own account
                raise Rejected(SERVICE, status=response.status_code, detail=detail or
                               "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
            raise error_for_status(
                SERVICE, response.status_code, detail=detail,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if not isinstance(answer, dict) or not isinstance(answer.get("sid"), str):
            raise MalformedResponse(SERVICE, status=response.status_code,
                                    detail="the answer has no message sid")
        return str(answer["sid"])
