"""What can go wrong, drawn once: every exception the project defines.

The clients of Webex and of the Instant Connect broker share one tree, defined here, so the
conversation explains a failure the same way wherever it came from::

    BotError
    ├── InvalidRequest          the caller asked for something impossible (nothing was sent)
    └── UpstreamError           a service answered badly or not at all
        ├── Rejected            400, 404 and other 4xx: the request was refused; not retried
        │   └── DeviceGone      bot.upstream.devices: Webex forgot the bot's device (404)
        ├── NotAuthorized       401 or 403: token invalid, or Instant Connect not activated
        ├── RateLimited         429 after the bounded retries ran out
        ├── Deferred            a mail server's 4xx ("try again later") after the retries
        ├── Unavailable         5xx after the bounded retries ran out
        ├── Timeout             no answer within the configured time
        ├── Unconfirmed         a send whose outcome is unknown (it may have been delivered):
        │                       never retried blindly
        ├── Unreachable         the connection failed (DNS, refused, reset)
        └── MalformedResponse   a 2xx whose body is not what the API documents

Every ``UpstreamError`` keeps the service name, the HTTP status and Webex's tracking id so a
person can quote a reference; none of them ever holds a token or a cipher.

The others are defined beside the code that raises them::

    ValueError
    ├── SettingsError           bot.settings: a variable is missing or invalid (names it)
    └── MalformedEvent          bot.web.envelope: a body that is no webhook envelope (400)
    Exception
    ├── StoreUnavailable        bot.jobs.storage: any engine failure (unreachable, full, ...)
    │   └── StoreTooNew         bot.jobs.storage: a store a newer release wrote (never written)
    ├── BacklogFull             bot.jobs.storage: MAX_BACKLOG events wait already (503)
    ├── Refused                 bot.web.request_framing: a request the web loop answers itself
    ├── Silent                  bot.listen.connection: the websocket is open but no pong came
    ├── Replaced                bot.listen.listener: another connection took the bot's device
    ├── Refused                 bot.listen.listener: Webex refused the socket (4400/4401/4403)
    └── UsageError              bot.cli: a bad argument (one line, exit 2)

The sandbox, which stands for Webex and imports nothing from the bot, has its own ``ApiError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class FieldError:
    """One problem with one named field, phrased for a person."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class BotError(Exception):
    """Base of every error the bot raises on purpose."""


class InvalidRequest(BotError):
    """The request was refused before any call because some fields are impossible."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


class UpstreamError(BotError):
    """A call to Webex or to the broker failed; ``explanation`` is safe to show to a person."""

    explanation = "Something went wrong talking to {service}."

    def __init__(
        self,
        service: str,
        *,
        status: int | None = None,
        tracking_id: str | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.service = service
        self.retry_after = retry_after
        self.status = status
        self.tracking_id = tracking_id
        self.detail = detail
        super().__init__(self.describe())

    def describe(self) -> str:
        """The explanation plus status and reference, for logs and for people alike."""
        explanation = self.explanation.format(service=self.service)
        parts = [explanation[:1].upper() + explanation[1:]]  # "the mail server ..." opens it
        if self.detail:
            parts.append(f"({self.detail})")
        if self.status:
            parts.append(f"[HTTP {self.status}]")
        if self.tracking_id:
            parts.append(f"Reference: {self.tracking_id}")
        return " ".join(parts)


class Rejected(UpstreamError):
    explanation = "{service} refused the request."


class NotAuthorized(UpstreamError):
    explanation = (
        "{service} did not accept the bot's token: it may be invalid or expired, or it must "
        "belong to an organisation where Instant Connect is activated."
    )


class RateLimited(UpstreamError):
    explanation = "{service} is busy right now (rate limited). Please try again in a minute."


class Deferred(UpstreamError):
    explanation = "{service} asked to try again later. Please try again shortly."


class Unavailable(UpstreamError):
    explanation = "{service} is temporarily unavailable. Please try again shortly."


class Timeout(UpstreamError):
    explanation = "{service} did not answer in time. Please try again shortly."


class Unconfirmed(UpstreamError):
    """The request reached the service but its answer did not come back, and the service could
    not be asked whether it acted: the message may have been delivered. Sending it again could
    deliver it twice, so it is not retried."""

    explanation = ("{service} did not confirm it, so it was not sent again: it would arrive "
                   "twice if it was delivered.")


class Unreachable(UpstreamError):
    explanation = "The bot could not reach {service}. Please try again shortly."


class MalformedResponse(UpstreamError):
    explanation = "{service} sent an answer the bot could not understand."


RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses worth another attempt; every other 4xx and a plain 500 fail at once."""


def is_retryable(error: UpstreamError) -> bool:
    """A rate limit, a gateway error, a failed connection or a mail server's "later" may pass;
    a send that may have been delivered is never tried again."""
    if isinstance(error, Unconfirmed):
        return False
    return isinstance(error, Unreachable | Deferred) or error.status in RETRYABLE_STATUSES


def error_for_status(
    service: str,
    status: int,
    *,
    tracking_id: str | None = None,
    detail: str = "",
    retry_after: float | None = None,
) -> UpstreamError:
    """Map an HTTP status to the error class that explains it."""
    if status in (401, 403):
        cls: type[UpstreamError] = NotAuthorized
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = Unavailable
    else:
        cls = Rejected
    return cls(
        service, status=status, tracking_id=tracking_id, detail=detail, retry_after=retry_after
    )


@contextlib.contextmanager
def network_errors(service: str) -> Iterator[None]:
    """Turn ``requests``' connection failures and timeouts into this tree's errors."""
    try:
        yield
    except requests.ConnectTimeout:
        raise Unreachable(service, detail="connection timed out") from None
    except requests.Timeout:
        raise Timeout(service) from None
    except requests.ConnectionError:
        raise Unreachable(service) from None
