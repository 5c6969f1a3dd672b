"""Webex REST routes for people and spaces: /v1/people/me, /v1/people/{id}, /v1/rooms (list and
one), /v1/memberships (list)."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .responses import ApiError, Call, json_response, query_max
from .world import World

DEFAULT_LIST_MAX = 100
LIST_CAP = 1000
ROOM_TYPES = ("direct", "group")


class DirectoryApi:
    """Answer who is who and what a space is, as the bot may see it."""

    def __init__(self, world: World) -> None:
        self._world = world

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule("/v1/people/me", methods=["GET"], endpoint=self.me),
            Rule("/v1/people/<person_id>", methods=["GET"], endpoint=self.person),
            Rule("/v1/rooms", methods=["GET"], endpoint=self.rooms),
            Rule("/v1/rooms/<room_id>", methods=["GET"], endpoint=self.room),
            Rule("/v1/memberships", methods=["GET"], endpoint=self.memberships),
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

    def rooms(self, call: Call) -> Response:
        """GET /v1/rooms?type=direct|group&sortBy=lastactivity&max=N: the bot's spaces, latest
        activity first (the only order the sandbox keeps)."""
        room_type = call.request.args.get("type")
        if room_type is not None and room_type not in ROOM_TYPES:
            raise ApiError(400, "type must be direct or group.")
        limit = query_max(call.request, DEFAULT_LIST_MAX, LIST_CAP)
        return json_response({"items": self._world.rooms_of(self._world.bot["id"],
                                                           room_type)[:limit]})

    def memberships(self, call: Call) -> Response:
        """GET /v1/memberships?roomId=..[&personId=..]: members of a space the bot is in."""
        room_id = call.request.args.get("roomId")
        if not room_id:
            raise ApiError(400, "roomId is required.")
        self._world.member_room(room_id, self._world.bot["id"])
        person_id = call.request.args.get("personId")
        if person_id:
            found = self._world.membership(room_id, person_id)
            return json_response({"items": [found] if found else []})
        raise ApiError(400, "The sandbox lists memberships by roomId and personId only.")
