"""Webex REST routes for webhooks, with RFC 5988 Link pagination on the list."""

from __future__ import annotations

from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .responses import Call, json_response, query_max, read_json_object
from .webhooks import WebhookStore

PAGE_CAP = 100


def _token(call: Call) -> str:
    """The bearer token of an authorized request (the webhook owner)."""
    return call.request.headers["Authorization"].split(" ", 1)[1]


class WebhooksApi:
    """Create, list, read, update and delete the caller's webhooks."""

    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    def rules(self) -> list[Rule]:
        """The routes this module serves."""
        return [
            Rule("/v1/webhooks", methods=["POST"], endpoint=self.create),
            Rule("/v1/webhooks", methods=["GET"], endpoint=self.list_webhooks),
            Rule("/v1/webhooks/<webhook_id>", methods=["GET"], endpoint=self.get),
            Rule("/v1/webhooks/<webhook_id>", methods=["PUT"], endpoint=self.update),
            Rule("/v1/webhooks/<webhook_id>", methods=["DELETE"], endpoint=self.delete),
        ]

    def create(self, call: Call) -> Response:
        """POST /v1/webhooks."""
        return json_response(self._store.create(_token(call), read_json_object(call.request)))

    def list_webhooks(self, call: Call) -> Response:
        """GET /v1/webhooks?max=N: one page, and a Link to the next while there is one."""
        limit = query_max(call.request, PAGE_CAP, PAGE_CAP)
        items, cursor = self._store.page(_token(call), limit, call.request.args.get("cursor"))
        response = json_response({"items": items})
        if cursor is not None:
            query = urlencode({"max": limit, "cursor": cursor})
            response.headers["Link"] = f'<{call.request.host_url}v1/webhooks?{query}>; rel="next"'
        return response

    def get(self, call: Call) -> Response:
        """GET /v1/webhooks/{id}."""
        return json_response(self._store.get(_token(call), call.args["webhook_id"]))

    def update(self, call: Call) -> Response:
        """PUT /v1/webhooks/{id}."""
        body = read_json_object(call.request)
        return json_response(self._store.update(_token(call), call.args["webhook_id"], body))

    def delete(self, call: Call) -> Response:
        """DELETE /v1/webhooks/{id}."""
        self._store.delete(_token(call), call.args["webhook_id"])
        return Response(status=204)
