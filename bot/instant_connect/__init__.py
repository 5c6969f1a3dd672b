"""Webex Instant Connect: the request, the unique subject, the HTTP client and the links."""

from bot.instant_connect.client import InstantConnectClient
from bot.instant_connect.links import Link, MeetingLinks
from bot.instant_connect.request import MeetingRequest, is_sip_uri
from bot.instant_connect.subject import unique_sub

__all__ = [
    "InstantConnectClient",
    "Link",
    "MeetingLinks",
    "MeetingRequest",
    "is_sip_uri",
    "unique_sub",
]
