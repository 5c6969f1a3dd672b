"""Webex REST routes for people and spaces: /v1/people/me, /v1/people/{id}, /v1/rooms/{id}."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .responses import Call, json_response
from .world import World


class DirectoryApi:
    """Answer who is who and what a space is, as the bot may see it."""

    def __init__(self, world: World) -> None:
        self._world = world

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule("/v1/people/me", methods=["GET"], endpoint=self.me),
            Rule("/v1/people/<person_id>", methods=["GET"], endpoint=self.person),
            Rule("/v1/rooms/<room_id>", methods=["GET"], endpoint=self.room),
        ]

    def me(self, call: Call) -> Response:
        """GET /v1/people/me: the bot itself."""
        return json_response(self._world.person(self._world.bot["id"]))

    def person(self, call: Call) -> Response:
        """GET /v1/people/{id}."""
        return json_response(self._world.person(call.args["person_id"]))

    def room(self, call: Call) -> Response:
        """GET /v1/rooms/{id}: only spaces the bot is in."""
        return json_response(self._world.member_room(call.args["room_id"], self._world.bot["id"]))
