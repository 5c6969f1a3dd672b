"""The sandbox's WSGI application: faults first, then bearer auth, routing and recording.

Every response carries a Trackingid header; every request is recorded with the status sent
(0 when the connection was dropped) and its Authorization value masked.

A ``Service`` (Twilio's API) owns a path prefix: its requests are checked with its own
credentials instead of the bot's bearer token, and its refusals, unknown paths and injected
faults are answered in its own error shape. Faults and recording apply to it like to any route.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .faults import Fault, FaultTable
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


class Service(Protocol):
    """Routes under a path prefix with their own credentials and error shape (e.g. Twilio)."""

    prefix: str

    def rules(self) -> list[Rule]:
        """The routes, all under ``prefix``."""
        ...

    def refusal(self, request: Request) -> Response | None:
        """The answer to a request without valid credentials, or None to let it through."""
        ...

    def error(self, status: int, message: str) -> Response:
        """An error answer in the service's shape."""
        ...


def _phrase(status: int) -> str:
    """A human message for a status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Injected failure {status}"


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
        services: Sequence[Service] = (),
    ) -> None:
        self._services = tuple(services)
        routes = [*rules, *(rule for service in self._services for rule in service.rules())]
        self._map = Map(routes, merge_slashes=False)
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
        service = self._service(request.path)
        # Carried out before the fault (``after``): what the request did stays done.
        done = (self._answer(request, service, tracking)
                if fault is not None and fault.after else None)
        if fault is not None and fault.latency > 0:
            self._stopping.wait(fault.latency)
        if fault is not None and fault.drop:
            self._record(request, 0)
            _drop_connection(environ)
        if fault is not None and fault.status is not None:
            response = self._fault_response(fault, service, tracking)
        else:
            response = done if done is not None else self._answer(request, service, tracking)
        response.headers["Trackingid"] = tracking
        self._record(request, response.status_code)
        return response(environ, start_response)

    def _service(self, path: str) -> Service | None:
        """The service owning this path, if any."""
        return next((s for s in self._services if path.startswith(s.prefix)), None)

    def _fault_response(self, fault: Fault, service: Service | None, tracking: str) -> Response:
        """An injected error: as the fault says, in the service's shape unless it has a body."""
        if service is None or fault.body is not None:
            return fault.response(tracking)
        assert fault.status is not None
        response = service.error(fault.status, _phrase(fault.status))
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def _answer(self, request: Request, service: Service | None, tracking: str) -> Response:
        """Authorize, route and run the handler, mapping refusals to Webex (or service) errors."""

        def error(status: int, message: str) -> Response:
            if service is not None:
                return service.error(status, message)
            return error_response(status, message, tracking)

        try:
            if service is not None:
                refusal = service.refusal(request)
                if refusal is not None:
                    return refusal
            elif request.headers.get("Authorization") != self._expected_auth:
                raise ApiError(401, NO_TOKEN)
            endpoint, args = self._map.bind_to_environ(request.environ).match()
            return endpoint(Call(request, _path_values(args)))
        except ApiError as refused:
            return error(refused.status, refused.message)
        except NotFound:
            return error(404, "The requested resource could not be found.")
        except MethodNotAllowed:
            return error(405, f"{request.method} is not allowed here.")
        except Exception:
            log.exception("sandbox handler failed for %s %s", request.method, request.path)
            return error(500, "Internal error in the sandbox.")

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
