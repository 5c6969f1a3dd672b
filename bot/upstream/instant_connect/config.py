"""Where the broker is, how to build links from its ciphers, and how patiently to call it."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.limits import UPSTREAM_TIMEOUT
from bot.upstream.retry import RetryPolicy

DEFAULT_AUDIENCE = "a4d886b0-979f-4e2c-a958-3e8c14605e51"


@dataclass(frozen=True)
class InstantConnectConfig:
    """The broker's address and audience, the bases of the long URLs, timeouts and retries.

    ``{vertical}`` in a long-URL base becomes ``gen`` or ``hc``, so healthcare links get the
    healthcare pages; a base without it is used as given.
    """

    broker_url: str = "https://mtg-broker-a.wbx2.com"
    audience: str = DEFAULT_AUDIENCE
    host_url_base: str = "https://instant.webex.com/{vertical}/v1/login?int=jose&v=1&data="
    guest_url_base: str = "https://instant.webex.com/{vertical}/v1/talk?int=jose&v=1&data="
    connect_timeout: float = 5.0
    read_timeout: float = UPSTREAM_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
