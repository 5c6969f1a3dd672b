"""The Webex REST API, as much of it as the bot uses, through ``webexpythonsdk``.

Usage::

    webex = WebexClient(settings.bot_token, settings.webex_base_url, retry=settings.retry,
                        pool_size=settings.worker_threads)
    message = webex.message(event.data_id)
    webex.send(room_id=message.room_id, markdown="Hello", card=help_card(...))

The SDK's own rate-limit loop is switched off (it waits without bound); 429, 502-504 and
connection failures are retried under the bot's bounded
:class:`~bot.upstream.retry.RetryPolicy`, and
every failure becomes a :mod:`bot.errors` error carrying status and tracking id. The SDK's
connection pool is sized to the threads sharing the client (``pool_size``), and its misleading
"Malformed Retry-After" warning is filtered out: the bot reads Retry-After itself and logs the wait
it really makes.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from webexpythonsdk import WebexAPI
from webexpythonsdk.exceptions import ApiError

from bot.errors import error_for_status, network_errors
from bot.limits import UPSTREAM_TIMEOUT
from bot.secret import Secret
from bot.upstream.pool import DEFAULT_POOL_SIZE, size_pool
from bot.upstream.retry import RetryPolicy, parse_retry_after
from cards import attachment

SERVICE = "Webex"
T = TypeVar("T")
SDK_RETRY_AFTER_WARNING = "Malformed Retry-After header received"


class _SdkRetryAfterFilter(logging.Filter):
    """Drops webexpythonsdk's "Malformed Retry-After ... Defaulting to 15 seconds" line, only it.

    The SDK reads Retry-After as whole seconds, so "1.5" or an HTTP date looks malformed to it;
    but its rate-limit wait is off and its 15 s is never waited. The bot parses the header itself
    and logs the real wait ("retrying after a failed call", ``wait_seconds``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SDK_RETRY_AFTER_WARNING)


_SDK_RETRY_AFTER_FILTER = _SdkRetryAfterFilter()


class _SdkUserAgentFilter(logging.Filter):
    """Turns webexpythonsdk's "User-Agent: ..." line, logged at INFO for every client made (a
    line of platform details in every process, at every start), into one debug line at most
    per process."""

    def __init__(self) -> None:
        super().__init__()
        self._said = threading.Event()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("User-Agent:"):
            return True
        if self._said.is_set() or not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        self._said.set()
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


_SDK_USER_AGENT_FILTER = _SdkUserAgentFilter()


@dataclass(frozen=True)
class Person:
    """Who someone is, as far as access control and time zones care."""

    id: str
    emails: tuple[str, ...]
    display_name: str
    org_id: str | None
    timezone: str | None = None
    type: str = "person"

    @property
    def email(self) -> str:
        """The first address, lower-cased, or empty when Webex shows none."""
        return self.emails[0].lower() if self.emails else ""


@dataclass(frozen=True)
class Message:
    """A message someone wrote; fetched because webhooks carry no text."""

    id: str
    room_id: str
    room_type: str
    person_id: str
    person_email: str
    text: str = ""
    html: str = ""
    parent_id: str | None = None


@dataclass(frozen=True)
class AttachmentAction:
    """A card submit: who pressed which card, with the inputs as Webex sent them."""

    id: str
    message_id: str
    person_id: str
    room_id: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Webhook:
    """One registered webhook (the secret is never returned by Webex)."""

    id: str
    name: str
    target_url: str
    resource: str
    event: str
    filter: str | None
    status: str


class Webex(Protocol):
    """What the conversation and its outbox call of Webex: a :class:`WebexClient`, or in tests
    the one fake of ``tests/support/webex.py``. The listener and the webhook set-up take the
    client itself: they are tried against the sandbox, which speaks HTTP."""

    def me(self) -> Person:
        """The bot itself."""

    def person(self, person_id: str) -> Person:
        """Someone's profile."""

    def message(self, message_id: str) -> Message:
        """The message an event announced."""

    def attachment_action(self, action_id: str) -> AttachmentAction:
        """The card submit an event announced."""

    def membership(self, room_id: str, person_id: str) -> dict[str, Any] | None:
        """Someone's membership of a space, or None."""

    def send(
        self, *, markdown: str, room_id: str | None = None, to_person_id: str | None = None,
        parent_id: str | None = None, card: dict[str, Any] | None = None,
    ) -> str:
        """Post a message; its id."""

    def recent_messages(
        self, room_id: str, parent_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest messages of a space or thread, newest first."""

    def direct_messages(
        self, person_id: str, parent_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest messages of the bot's 1:1 space with a person, newest first."""

    def delete_message(self, message_id: str) -> None:
        """Remove a message."""


class WebexClient:
    """The bot's calls to Webex, each retried within bounds and translated into bot errors."""

    def __init__(
        self,
        token: Secret,
        base_url: str,
        *,
        timeout: float = UPSTREAM_TIMEOUT,
        retry: RetryPolicy | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        """``pool_size``: how many threads call at once (the job threads), connections kept."""
        logging.getLogger("webexpythonsdk.restsession").addFilter(_SDK_USER_AGENT_FILTER)
        # The SDK drops the "/v1" of a base URL without a trailing slash.
        self._api = WebexAPI(
            access_token=token.reveal(),
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            single_request_timeout=max(1, round(timeout)),
            wait_on_rate_limit=False,
        )
        # The SDK offers no way to pass a session or adapter; its requests session is this one.
        size_pool(self._api._session._req_session, pool_size)
        # With wait_on_rate_limit off, the SDK's Retry-After reading only produces that warning.
        logging.getLogger("webexpythonsdk.exceptions").addFilter(_SDK_RETRY_AFTER_FILTER)
        self._retry = retry or RetryPolicy()
        self._me: Person | None = None
        self._me_lock = threading.Lock()

    def __repr__(self) -> str:
        return "WebexClient()"

    def me(self) -> Person:
        """The bot itself, fetched once and remembered (its id never changes)."""
        with self._me_lock:
            if self._me is None:
                self._me = _person(self._call(self._api.people.me))
            return self._me

    def check_token(self) -> None:
        """Ask Webex who the bot is, uncached: fails when the token no longer works."""
        self._call(self._api.people.me)

    def person(self, person_id: str) -> Person:
        """Someone's profile, for access control and their time zone."""
        return _person(self._call(lambda: self._api.people.get(person_id)))

    def message(self, message_id: str) -> Message:
        """The message a webhook announced."""
        data = self.message_record(message_id)
        return Message(
            id=data["id"],
            room_id=data["roomId"],
            room_type=data.get("roomType", "group"),
            person_id=data.get("personId", ""),
            person_email=data.get("personEmail", ""),
            text=data.get("text", "") or "",
            html=data.get("html", "") or "",
            parent_id=data.get("parentId"),
        )

    def message_record(self, message_id: str) -> dict[str, Any]:
        """A message as the REST API returns it (the websocket listener reads its fields)."""
        return self._call(lambda: self._api.messages.get(message_id)).to_dict()

    def attachment_action(self, action_id: str) -> AttachmentAction:
        """The card submit a webhook announced, with its inputs."""
        data = self.attachment_action_record(action_id)
        inputs = data.get("inputs")
        return AttachmentAction(
            id=data["id"],
            message_id=data.get("messageId", ""),
            person_id=data.get("personId", ""),
            room_id=data.get("roomId", ""),
            inputs=inputs if isinstance(inputs, dict) else {},
        )

    def attachment_action_record(self, action_id: str) -> dict[str, Any]:
        """A card submit as the REST API returns it."""
        return self._call(lambda: self._api.attachment_actions.get(action_id)).to_dict()

    def membership(self, room_id: str, person_id: str) -> dict[str, Any] | None:
        """Someone's membership of a space as the REST API returns it, or None."""
        return self._call(lambda: next((item.to_dict() for item in self._api.memberships.list(
            roomId=room_id, personId=person_id)), None))

    def spaces_by_activity(self, room_type: str, limit: int) -> list[dict[str, Any]]:
        """The bot's spaces of one type ("direct", "group"), latest activity first (one page)."""
        return self._call(lambda: [
            item.to_dict() for item in itertools.islice(self._api.rooms.list(
                type=room_type, sortBy="lastactivity", max=limit), limit)
        ])

    def send(
        self,
        *,
        markdown: str,
        room_id: str | None = None,
        to_person_id: str | None = None,
        parent_id: str | None = None,
        card: dict[str, Any] | None = None,
    ) -> str:
        """Post a message (with an optional card, the markdown being its fallback); its id."""
        attachments = [attachment(card)] if card is not None else None
        message = self._call(
            lambda: self._api.messages.create(
                roomId=room_id,
                toPersonId=to_person_id,
                parentId=parent_id,
                markdown=markdown,
                attachments=attachments,
            )
        )
        return message.id

    def recent_messages(
        self, room_id: str, parent_id: str | None, limit: int, *, mentioning_bot: bool = False
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` messages of a space or thread, newest first (one page only).

        Webex lets a bot list 1:1 spaces; in group spaces only messages that mention it
        (``mentioning_bot``).
        """
        mentioned = "me" if mentioning_bot else None
        return self._call(lambda: [
            item.to_dict() for item in itertools.islice(
                self._api.messages.list(roomId=room_id, parentId=parent_id,
                                        mentionedPeople=mentioned, max=limit), limit)
        ])

    def direct_messages(
        self, person_id: str, parent_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` messages of the bot's 1:1 space with a person, or of one thread
        of it, newest first (``GET /messages/direct``: the space needs no id, and takes no
        ``max``; its pages are followed only as far as ``limit``)."""
        return self._call(lambda: [
            item.to_dict() for item in itertools.islice(
                self._api.messages.list_direct(personId=person_id, parentId=parent_id), limit)
        ])

    def delete_message(self, message_id: str) -> None:
        """Remove a message, e.g. a form that must not be submitted twice."""
        self._call(lambda: self._api.messages.delete(message_id))

    def webhooks(self) -> Iterator[Webhook]:
        """Every webhook of this bot, following Webex's pagination to the end."""
        for item in self._call(lambda: list(self._api.webhooks.list())):
            yield _webhook(item.to_dict())

    def create_webhook(
        self, *, name: str, target_url: str, resource: str, event: str, secret: Secret,
        filter: str | None = None,
    ) -> Webhook:
        """Register a webhook signed with the bot's secret."""
        created = self._call(
            lambda: self._api.webhooks.create(
                name=name, targetUrl=target_url, resource=resource, event=event,
                filter=filter, secret=secret.reveal(),
            )
        )
        return _webhook(created.to_dict())

    def update_webhook(self, webhook: Webhook, *, target_url: str, secret: Secret) -> Webhook:
        """Point a webhook at the bot, give it the current secret and (re)activate it."""
        updated = self._call(
            lambda: self._api.webhooks.update(
                webhook.id, name=webhook.name, targetUrl=target_url,
                secret=secret.reveal(), status="active",
            )
        )
        return _webhook(updated.to_dict())

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove one of the bot's own webhooks."""
        self._call(lambda: self._api.webhooks.delete(webhook_id))

    def _call(self, send: Callable[[], T]) -> T:
        return self._retry.call(lambda: _translated(send), service="webex")


def _translated(send: Callable[[], T]) -> T:
    """Run one SDK call, turning its exceptions into the bot's error tree."""
    try:
        with network_errors(SERVICE):
            return send()
    except ApiError as error:
        raise error_for_status(
            SERVICE,
            error.status_code,
            tracking_id=error.tracking_id or error.response.headers.get("Trackingid"),
            detail=(error.message or "")[:200],
            retry_after=parse_retry_after(error.response.headers.get("Retry-After")),
        ) from None


def _person(item: Any) -> Person:
    data = item.to_dict()
    return Person(
        id=data["id"],
        emails=tuple(data.get("emails") or ()),
        display_name=data.get("displayName", ""),
        org_id=data.get("orgId"),
        timezone=data.get("timezone"),
        type=data.get("type", "person"),
    )


def _webhook(data: dict[str, Any]) -> Webhook:
    return Webhook(
        id=data["id"],
        name=data.get("name", ""),
        target_url=data.get("targetUrl", ""),
        resource=data.get("resource", ""),
        event=data.get("event", ""),
        filter=data.get("filter"),
        status=data.get("status", "active"),
    )
