"""The sandbox's WSGI application: faults first, then bearer auth, routing and recording.

Every response carries a Trackingid header; every request is recorded with the status sent
(0 when the connection was dropped) and its Authorization value masked.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .faults import FaultTable
from .ids import tracking_id
from .journal import Journal, Recorded
from .responses import ApiError, Call, error_response

log = logging.getLogger(__name__)
NO_TOKEN = "The request requires a valid access token set in the Authorization request header."


def _masked_headers(request: Request) -> dict[str, str]:
    """Request headers with the Authorization credentials replaced by ***."""
    headers = dict(request.headers.items())
    if "Authorization" in headers:
        scheme = headers["Authorization"].split(" ", 1)[0]
        headers["Authorization"] = f"{scheme} ***" if " " in headers["Authorization"] else "***"
    return headers


def _json_or_none(data: bytes) -> object | None:
    """The parsed JSON body, or None when there is none or it is not JSON."""
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def _path_values(args: Mapping[str, Any]) -> dict[str, str]:
    """The values a rule took from the path. Werkzeug types them Any, as a converter may return
    anything; the sandbox's rules use only the default string converter."""
    values = {name: value for name, value in args.items() if isinstance(value, str)}
    if len(values) != len(args):
        raise TypeError(f"a sandbox rule converted its path values: {dict(args)!r}")
    return values


def _drop_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection without an answer."""
    environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("sandbox fault: connection dropped")


class SandboxApp:
    """Answer HTTP requests from the given routes, honouring faults and recording everything."""

    def __init__(
        self,
        rules: list[Rule],
        *,
        journal: Journal,
        faults: FaultTable,
        token: str,
        tracking_rng: random.Random,
        stopping: threading.Event,
    ) -> None:
        self._map = Map(rules, merge_slashes=False)
        self._journal = journal
        self._faults = faults
        self._expected_auth = f"Bearer {token}"
        self._tracking_rng = tracking_rng
        self._stopping = stopping

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Serve one request."""
        request = Request(environ)
        request.get_data(cache=True)
        with self._journal.lock:
            tracking = tracking_id(self._tracking_rng)
        fault = self._faults.take(request.method, request.path)
        if fault is not None and fault.latency > 0:
            self._stopping.wait(fault.latency)
        if fault is not None and fault.drop:
            self._record(request, 0)
            _drop_connection(environ)
        if fault is not None and fault.status is not None:
            response = fault.response(tracking)
        else:
            response = self._answer(request, tracking)
        response.headers["Trackingid"] = tracking
        self._record(request, response.status_code)
        return response(environ, start_response)

    def _answer(self, request: Request, tracking: str) -> Response:
        """Authorize, route and run the handler, mapping refusals to Webex error bodies."""
        try:
            if request.headers.get("Authorization") != self._expected_auth:
                raise ApiError(401, NO_TOKEN)
            endpoint, args = self._map.bind_to_environ(request.environ).match()
            return endpoint(Call(request, _path_values(args)))
        except ApiError as error:
            return error_response(error.status, error.message, tracking)
        except NotFound:
            return error_response(404, "The requested resource could not be found.", tracking)
        except MethodNotAllowed:
            return error_response(405, f"{request.method} is not allowed here.", tracking)
        except Exception:
            log.exception("sandbox handler failed for %s %s", request.method, request.path)
            return error_response(500, "Internal error in the sandbox.", tracking)

    def _record(self, request: Request, status: int) -> None:
        """Keep what was asked and what was answered."""
        self._journal.record_request(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.args.items()),
                json=_json_or_none(request.get_data()),
                status=status,
                headers=_masked_headers(request),
            )
        )
