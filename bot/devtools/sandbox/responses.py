"""Webex-shaped HTTP answers: the JSON error body, JSON success bodies, and reading JSON input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

JSON = "application/json"


class ApiError(Exception):
    """A request the sandbox refuses, answered with a status and a Webex error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def json_response(payload: object, status: int = 200) -> Response:
    """Answer with a JSON body."""
    return Response(json.dumps(payload), status=status, content_type=JSON)


def error_body(message: str, tracking_id: str) -> dict[str, Any]:
    """Build the Webex error shape: message, errors[].description and trackingId."""
    return {"message": message, "errors": [{"description": message}], "trackingId": tracking_id}


def error_response(status: int, message: str, tracking_id: str) -> Response:
    """Answer with the Webex error shape."""
    return json_response(error_body(message, tracking_id), status)


def read_json_object(request: Request) -> dict[str, Any]:
    """Parse the request body as a JSON object, or refuse with 400."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


@dataclass(frozen=True)
class Call:
    """One authorized request routed to a handler, with the values taken from its path."""

    request: Request
    args: dict[str, str]


def query_max(request: Request, default: int, cap: int) -> int:
    """Read the "max" query parameter; values above the cap get the cap, as Webex does."""
    text = request.args.get("max")
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ApiError(400, "max must be a positive integer.")
    return min(int(text), cap)
