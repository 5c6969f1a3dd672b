"""The Instant Connect broker as the conversation sees it: the one fake of
`bot.upstream.instant_connect.Broker`.

Like the real broker, which signs a fresh token on every call, it never answers twice with the
same links, even asked again with the same ``sub``: its first answer's links read plainly
(``https://ic.example.test/s/g1``), each later answer's carry its number (``.../a2/s/g1``), so a
test can tell which answer people were given; ``answers`` keeps every answer, told or lost.
"""

from __future__ import annotations

from bot.errors import BotError
from bot.upstream.instant_connect import Broker, Link, MeetingLinks, MeetingRequest


class FakeBroker:
    """Records each request and answers with links made from it, or with a set error."""

    def __init__(self, now: float) -> None:
        self.now = now  # the clock the request's window is read at, as the broker's
        self.requests: list[MeetingRequest] = []
        self.answers: list[MeetingLinks] = []  # every set of links made, told or lost
        self.error: BotError | None = None

    def create_links(self, request: MeetingRequest) -> MeetingLinks:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        request.check(self.now)  # as the real client does before sending
        base = "https://ic.example.test" + (f"/a{len(self.answers) + 1}" if self.answers else "")

        def links(role: str, count: int) -> tuple[Link, ...]:
            return tuple(
                Link(role, number, f"{base}/{role}/{request.sub}/{number}",
                     f"{base}/s/{role[0]}{number}"
                     if request.provide_short_urls else None)
                for number in range(1, count + 1))

        nbf, exp = request.window(self.now)
        answer = MeetingLinks(sub=request.sub, nbf=nbf, exp=exp,
                              hosts=links("host", request.hosts),
                              guests=links("guest", request.guests))
        self.answers.append(answer)
        return answer


_IS_BROKER: type[Broker] = FakeBroker  # mypy checks the fake against the protocol here
