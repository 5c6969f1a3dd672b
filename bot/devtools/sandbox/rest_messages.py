"""Webex REST routes for messages and card submits, as a bot token may use them.

Bot-posted messages are handed to the webhook dispatcher's background worker, so the bot's
POST returns before its own 1:1 message comes back to it as a webhook.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .content import bot_content
from .delivery import Dispatcher, message_event
from .responses import ApiError, Call, json_response, query_max, read_json_object
from .world import World

DEFAULT_LIST_MAX = 50
LIST_CAP = 1000
DESTINATIONS = ("roomId", "toPersonId", "toPersonEmail")


class MessagesApi:
    """Post, read, edit, delete and list messages; read attachment actions."""

    def __init__(self, world: World, dispatcher: Dispatcher) -> None:
        self._world = world
        self._dispatcher = dispatcher
        self._bot_id = world.bot["id"]

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule("/v1/messages", methods=["POST"], endpoint=self.create),
            Rule("/v1/messages", methods=["GET"], endpoint=self.list_messages),
            Rule("/v1/messages/direct", methods=["GET"], endpoint=self.list_direct),
            Rule("/v1/messages/<message_id>", methods=["GET"], endpoint=self.get),
            Rule("/v1/messages/<message_id>", methods=["PUT"], endpoint=self.edit),
            Rule("/v1/messages/<message_id>", methods=["DELETE"], endpoint=self.delete),
            Rule("/v1/attachment/actions/<action_id>", methods=["GET"], endpoint=self.action),
        ]

    def _destination(self, body: dict[str, Any]) -> str:
        """The space to post into: roomId, or the 1:1 space with toPersonId/toPersonEmail."""
        given = [key for key in DESTINATIONS if body.get(key) is not None]
        if len(given) != 1:
            raise ApiError(400, "Exactly one of roomId, toPersonId or toPersonEmail is required.")
        value = body[given[0]]
        if not isinstance(value, str):
            raise ApiError(400, f"{given[0]} must be a string.")
        if given[0] == "roomId":
            return value
        person = (
            self._world.person(value)
            if given[0] == "toPersonId"
            else self._world.person_by_email(value)
        )
        return str(self._world.direct_room(person["id"])["id"])

    def create(self, call: Call) -> Response:
        """POST /v1/messages."""
        body = read_json_object(call.request)
        room_id = self._destination(body)
        content = bot_content(body)
        parent_id = body.get("parentId")
        if parent_id is not None and not isinstance(parent_id, str):
            raise ApiError(400, "parentId must be a string.")
        message = self._world.add_message(self._bot_id, room_id, content, parent_id)
        self._dispatcher.publish_later(message_event(message))
        return json_response(message)

    def get(self, call: Call) -> Response:
        """GET /v1/messages/{id}."""
        return json_response(self._world.readable_message(call.args["message_id"], self._bot_id))

    def edit(self, call: Call) -> Response:
        """PUT /v1/messages/{id}: roomId plus new text/markdown (attachments accepted)."""
        body = read_json_object(call.request)
        if body.get("text") is None and body.get("markdown") is None:
            raise ApiError(400, "An edit needs text or markdown.")
        message = self._world.edit_message(
            call.args["message_id"], self._bot_id, body.get("roomId"), bot_content(body)
        )
        return json_response(message)

    def delete(self, call: Call) -> Response:
        """DELETE /v1/messages/{id}."""
        self._world.delete_message(call.args["message_id"], self._bot_id)
        return Response(status=204)

    def list_messages(self, call: Call) -> Response:
        """GET /v1/messages?roomId=..: newest first; bots need mentionedPeople=me in groups."""
        query = call.request.args
        room_id = query.get("roomId")
        if not room_id:
            raise ApiError(400, "roomId is required.")
        limit = query_max(call.request, DEFAULT_LIST_MAX, LIST_CAP)
        room = self._world.member_room(room_id, self._bot_id)
        mentioned = query.get("mentionedPeople")
        if room["type"] == "group" and mentioned is None:
            raise ApiError(403, "A bot must list group messages with mentionedPeople=me.")
        messages = self._world.messages_in(room_id)
        if mentioned is not None:
            wanted = {self._bot_id if p == "me" else p for p in mentioned.split(",")}
            messages = [m for m in messages if wanted & set(m.get("mentionedPeople", []))]
        if query.get("parentId"):
            messages = [m for m in messages if m.get("parentId") == query["parentId"]]
        return json_response({"items": messages[::-1][:limit]})

    def list_direct(self, call: Call) -> Response:
        """GET /v1/messages/direct?personId=..|personEmail=..[&parentId=..]: every message of the
        bot's 1:1 space with that person (or of one thread), newest first, in one page.

        Webex documents no ``max`` here, and no answer for a person with no 1:1 space with the
        bot: this answers 404, as for a space the bot is not in.
        """
        query = call.request.args
        given = [key for key in ("personId", "personEmail") if query.get(key)]
        if len(given) != 1:
            raise ApiError(400, "Exactly one of personId or personEmail is required.")
        person = (self._world.person(query["personId"]) if given == ["personId"]
                  else self._world.person_by_email(query["personEmail"]))
        direct = [room for room in self._world.rooms_of(person["id"], "direct")
                  if self._world.membership(room["id"], self._bot_id) is not None]
        if not direct:
            raise ApiError(404, "No 1:1 space with this person.")
        messages = self._world.messages_in(direct[0]["id"])
        if query.get("parentId"):
            messages = [m for m in messages if m.get("parentId") == query["parentId"]]
        return json_response({"items": messages[::-1]})

    def action(self, call: Call) -> Response:
        """GET /v1/attachment/actions/{id}."""
        return json_response(self._world.action(call.args["action_id"]))
