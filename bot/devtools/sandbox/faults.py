"""Injected failures per endpoint: an error status, Retry-After, latency, a dropped connection."""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol, TypeVar

from werkzeug.wrappers import Response

from .journal import Journal, matches, method_matches
from .responses import error_response

TOO_MANY_REQUESTS_HTML = (
    "<html><head><title>429 Too Many Requests</title></head>"
    "<body><h1>Too Many Requests</h1><p>Rate limit exceeded. Retry later.</p></body></html>"
)


@dataclass
class Fault:
    """How to misbehave for requests matching method and path ("*" suffix for a prefix).

    Examples: ``Fault("POST", "/api/v2/joseencrypt", status=503, times=2)``,
    ``Fault("GET", "/v1/*", latency=0.5)`` (answers normally, late), ``Fault("*", "*", drop=True)``.
    With ``after`` the request is carried out first and only its answer misbehaves:
    ``Fault("POST", "/v1/messages", after=True, latency=4, drop=True)`` is a message Webex
    created whose sender never learns it (killed meanwhile, or its connection lost).
    """

    method: str
    path: str
    status: int | None = None
    times: int | None = None
    retry_after: str | None = None
    latency: float = 0.0
    drop: bool = False
    body: str | bytes | dict | list | None = None
    after: bool = False

    def __post_init__(self) -> None:
        """Refuse faults that would do nothing or cannot be sent."""
        if self.status is None and not self.drop and self.latency <= 0:
            raise ValueError("a fault needs a status, a latency or drop")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, not {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        if self.latency < 0:
            raise ValueError("latency must not be negative")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Read "METHOD PATH [status=N] [times=N|always] [retry_after=X] [latency=S] [drop]
        [after]"."""
        words = shlex.split(spec)
        if len(words) < 2:
            raise ValueError(f"fault needs METHOD and PATH: {spec!r}")
        options: dict[str, object] = {"method": words[0], "path": words[1]}
        for word in words[2:]:
            key, sep, value = word.partition("=")
            if word in ("drop", "after"):
                options[word] = True
            elif sep and key in ("status", "times"):
                options[key] = None if value in ("always", "none") else int(value)
            elif sep and key == "retry_after":
                options[key] = value
            elif sep and key == "latency":
                options[key] = float(value)
            else:
                raise ValueError(f"unknown fault option {word!r} in {spec!r}")
        return cls(**options)  # type: ignore[arg-type]

    def applies_to(self, method: str, path: str) -> bool:
        """Whether this fault covers the request."""
        return method_matches(self.method, method) and matches(self.path, path)

    def response(self, tracking_id: str) -> Response:
        """The error answer: the given body, HTML for 429 as Webex sends it, else Webex JSON."""
        assert self.status is not None
        if isinstance(self.body, dict | list):
            response = Response(json.dumps(self.body), self.status, content_type="application/json")
        elif self.body is not None:
            response = Response(self.body, self.status, content_type="text/plain")
        elif self.status == 429:
            response = Response(TOO_MANY_REQUESTS_HTML, 429, content_type="text/html")
        else:
            response = error_response(self.status, _phrase(self.status), tracking_id)
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return response


def _phrase(status: int) -> str:
    """A human message for an injected status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Injected failure {status}"


class FaultTable:
    """The faults in force, consumed one request at a time."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._lock = journal.lock
        self._faults: list[Fault] = []

    @property
    def active(self) -> list[Fault]:
        """The faults still in force, with their remaining times."""
        with self._lock:
            return [dataclasses.replace(f) for f in self._faults]

    def add(self, fault: Fault) -> None:
        """Put a fault in force (earlier faults win when several match)."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """Return the fault for this request, using up one of its times."""
        with self._lock:
            fault = use_up(self._faults, lambda fault: fault.applies_to(method, path))
            if fault is not None:
                self._journal.changed()
            return fault


class _Counted(Protocol):
    times: int | None


F = TypeVar("F", bound=_Counted)


def use_up(faults: list[F], applies: Callable[[F], bool]) -> F | None:
    """The first fault that applies, one of its times used up (and gone once none are left)."""
    for fault in faults:
        if applies(fault):
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    faults.remove(fault)
            return fault
    return None
