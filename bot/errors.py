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
person can quote a reference; none of them ever holds a token or a cipher. A failure on the
network also keeps, for the log only (``log_fields``), the host it was calling and the cause
in an operator's words (DNS, refused, timeout, TLS, proxy, reset): the person reads the plain
explanation, the operator what to fix.

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
import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import urlsplit

import requests
import urllib3.exceptions


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
        host: str | None = None,
        cause: str | None = None,
    ) -> None:
        self.service = service
        self.retry_after = retry_after
        self.host = host  # for the log: where the call went (no path, no query)
        self.cause = cause  # for the log: what failed on the network
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

    def log_fields(self) -> dict[str, Any]:
        """What a log line says of this failure: the person's explanation leaves out the host
        and the network's cause, the operator needs both."""
        fields = {"service": self.service, "status": self.status,
                  "tracking_id": self.tracking_id, "error_type": type(self).__name__}
        return fields | {name: value for name, value in
                         (("host", self.host), ("cause", self.cause)) if value}


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
def network_errors(service: str, *, not_idempotent: bool = False) -> Iterator[None]:
    """Turn ``requests``' connection failures and timeouts into this tree's errors, each with
    the host and the cause for the log. For a request that is ``not_idempotent`` (creating a
    text message), a connection lost after it was made is a Timeout, not Unreachable: the
    request may have gone out, so it must not simply be sent again."""
    try:
        yield
    except requests.ConnectTimeout as error:
        raise Unreachable(service, detail="connection timed out", **network_facts(error)) \
            from None
    except requests.Timeout as error:
        raise Timeout(service, **network_facts(error)) from None
    except requests.ConnectionError as error:
        if not_idempotent and not _never_connected(error):
            raise Timeout(service, detail=f"the connection ended before {service} answered",
                          **network_facts(error)) from None
        raise Unreachable(service, **network_facts(error)) from None


def _never_connected(error: BaseException) -> bool:
    """Whether a connection error happened while connecting (refused, no such host)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, urllib3.exceptions.NewConnectionError):
            return True
        reason = getattr(seen, "reason", None)
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return True
        seen = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) \
            else seen.__cause__ or seen.__context__
    return False


class NetworkFacts(TypedDict):
    """``UpstreamError``'s keywords for a failure on the network."""

    host: str | None
    cause: str


def network_facts(error: BaseException) -> NetworkFacts:
    """The host a failed call went to and why it failed."""
    return NetworkFacts(host=host_of(error), cause=network_cause(error))


def host_of(error: BaseException) -> str | None:
    """``host`` or ``host:port`` of the request that failed: never its path or query (a broker
    URL's query carries ciphers) nor a user or password."""
    url = getattr(getattr(error, "request", None), "url", None)
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.hostname}:{port}" if port else parts.hostname


def network_cause(error: BaseException) -> str:
    """Why a connection failed, in the words an operator looks for: DNS, connection refused,
    timeout, TLS, proxy, reset; read from the chain of exceptions ``requests`` and ``urllib3``
    wrap, so it does not depend on their messages (which quote the URL)."""
    chain = _chain(error)

    def seen(*kinds: type[BaseException]) -> BaseException | None:
        return next((link for link in chain if isinstance(link, kinds)), None)

    via_proxy = "proxy: " if seen(requests.exceptions.ProxyError,
                                  urllib3.exceptions.ProxyError) else ""
    tls = seen(ssl.SSLError)
    if seen(urllib3.exceptions.NameResolutionError, socket.gaierror):
        cause = "DNS: the host name does not resolve"
    elif isinstance(tls, ssl.SSLCertVerificationError):
        cause = f"TLS: {tls.verify_message or 'certificate verify failed'}"
    elif tls is not None or seen(requests.exceptions.SSLError):
        cause = f"TLS: {getattr(tls, 'reason', None) or 'handshake failed'}"
    elif seen(ConnectionRefusedError):
        cause = "connection refused"
    elif seen(requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
        cause = "timeout while connecting"
    elif seen(requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
        cause = "timeout waiting for the answer"
    elif seen(ConnectionResetError):
        cause = "connection reset"
    elif seen(http.client.RemoteDisconnected, ConnectionAbortedError,
              urllib3.exceptions.ProtocolError):
        cause = "connection closed before the answer"
    elif system := _errno_text(chain):
        cause = system
    else:
        cause = type(chain[-1]).__name__
    return via_proxy + cause


def _errno_text(chain: list[BaseException]) -> str:
    """The system's words for the first OS error with an errno ("No route to host")."""
    for link in chain:
        if isinstance(link, OSError) and link.errno is not None and link.strerror:
            return str(link.strerror).lower()
    return ""


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception it wraps (arguments, ``reason``, cause and context)."""
    found: list[BaseException] = []
    waiting: list[object] = [error]
    while waiting and len(found) < 32:
        link = waiting.pop(0)
        if not isinstance(link, BaseException) or any(link is known for known in found):
            continue
        found.append(link)
        waiting.extend([*link.args, getattr(link, "reason", None), link.__cause__,
                        link.__context__])
    return found
