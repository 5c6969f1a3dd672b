"""Webex Instant Connect: the request, the unique subject, the HTTP client and the links."""

from bot.upstream.instant_connect.client import Broker, InstantConnectClient
from bot.upstream.instant_connect.links import Link, MeetingLinks
from bot.upstream.instant_connect.request import MeetingRequest, is_sip_uri
from bot.upstream.instant_connect.subject import unique_sub

__all__ = [
    "Broker",
    "InstantConnectClient",
    "Link",
    "MeetingLinks",
    "MeetingRequest",
    "is_sip_uri",
    "unique_sub",
]
