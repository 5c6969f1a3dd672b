"""The Instant Connect broker as the conversation sees it: the one fake of
`bot.upstream.instant_connect.Broker`."""

from __future__ import annotations

from bot.errors import BotError
from bot.upstream.instant_connect import Broker, Link, MeetingLinks, MeetingRequest


class FakeBroker:
    """Records each request and answers with links made from it, or with a set error."""

    def __init__(self, now: float) -> None:
        self.now = now  # the clock the request's window is read at, as the broker's
        self.requests: list[MeetingRequest] = []
        self.error: BotError | None = None

    def create_links(self, request: MeetingRequest) -> MeetingLinks:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        request.check(self.now)  # as the real client does before sending

        def links(role: str, count: int) -> tuple[Link, ...]:
            return tuple(
                Link(role, number, f"https://ic.example.test/{role}/{request.sub}/{number}",
                     f"https://ic.example.test/s/{role[0]}{number}"
                     if request.provide_short_urls else None)
                for number in range(1, count + 1))

        nbf, exp = request.window(self.now)
        return MeetingLinks(sub=request.sub, nbf=nbf, exp=exp,
                            hosts=links("host", request.hosts),
                            guests=links("guest", request.guests))


_IS_BROKER: type[Broker] = FakeBroker  # mypy checks the fake against the protocol here
