"""The Instant Connect broker over HTTP: one request in, typed links or a typed error out.

Usage::

    client = InstantConnectClient(settings.bot_token, settings.instant_connect,
                                  pool_size=settings.worker_threads)
    links = client.create_links(MeetingRequest(sub=unique_sub("Follow-up"), num_guest=2))

Requests are checked before sending (:class:`~bot.errors.InvalidRequest`); failures raise the
:mod:`bot.errors` tree with status and tracking id; 429, 502-504 and connection failures are retried
under the configured :class:`~bot.upstream.retry.RetryPolicy`. The token never leaves the request
header.
The session keeps ``pool_size`` connections, one per thread that calls the broker at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import requests

from bot.errors import MalformedResponse, error_for_status, network_errors
from bot.secret import Secret
from bot.upstream.instant_connect.config import DEFAULT_AUDIENCE, InstantConnectConfig
from bot.upstream.instant_connect.links import SERVICE, MeetingLinks, build_links
from bot.upstream.instant_connect.request import MeetingRequest
from bot.upstream.pool import DEFAULT_POOL_SIZE, pooled_session
from bot.upstream.retry import parse_retry_after

log = logging.getLogger(__name__)

PATH = "/api/v2/joseencrypt"


class Broker(Protocol):
    """What the conversation asks of Instant Connect: an :class:`InstantConnectClient`, or in
    tests the fake of ``tests/support/broker.py``."""

    def create_links(self, request: MeetingRequest) -> MeetingLinks:
        """The links of one meeting, for a request checked first."""


class InstantConnectClient:
    """Asks the broker for meeting ciphers with the bot's token."""

    def __init__(
        self,
        token: Secret,
        config: InstantConnectConfig,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        """``pool_size`` sizes the session made here; a ``session`` passed in is used as it is."""
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        self._token = token
        self._config = config
        self._session = session if session is not None else pooled_session(pool_size)
        self._clock = clock
        self._url = config.broker_url.rstrip("/") + PATH

    def __repr__(self) -> str:
        return f"InstantConnectClient(url={self._url!r})"

    def create_links(self, request: MeetingRequest) -> MeetingLinks:
        """Check the request, call the broker (with bounded retries) and build the links."""
        if request.aud == DEFAULT_AUDIENCE:
            request = replace(request, aud=self._config.audience)
        request.check(self._clock())
        body, tracking_id = self._config.retry.call(lambda: self._post(request), service="broker")
        try:
            return build_links(body, request, self._config, self._clock())
        except MalformedResponse as error:
            raise MalformedResponse(
                SERVICE, status=error.status, tracking_id=tracking_id, detail=error.detail
            ) from None

    def _post(self, request: MeetingRequest) -> tuple[object, str | None]:
        with network_errors(SERVICE):
            response = self._session.post(
                self._url,
                json=request.to_body(),
                headers={"Authorization": f"Bearer {self._token.reveal()}"},
                timeout=(self._config.connect_timeout, self._config.read_timeout),
            )
        tracking_id = _tracking_id(response)
        log.info(
            "instant connect answered",
            extra={"status": response.status_code, "tracking_id": tracking_id},
        )
        if not response.ok:
            raise error_for_status(
                SERVICE,
                response.status_code,
                tracking_id=tracking_id,
                detail=_message(response),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        try:
            return response.json(), tracking_id
        except ValueError:
            raise MalformedResponse(
                SERVICE, status=response.status_code, tracking_id=tracking_id,
                detail="the answer is not JSON",
            ) from None


def _tracking_id(response: requests.Response) -> str | None:
    """Webex's reference for support: the body's ``trackingId``, else the ``Trackingid`` header."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("trackingId"), str):
        return body["trackingId"]
    return response.headers.get("Trackingid")


def _message(response: requests.Response) -> str:
    """The service's own words about the failure, shortened; empty when it sent none as JSON."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return message[:200] if isinstance(message, str) else ""
