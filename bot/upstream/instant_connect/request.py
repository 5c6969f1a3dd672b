"""The Instant Connect request: every parameter the guide documents, checked before it is sent.

Fields left as ``None`` are not sent, so the broker's own defaults apply. :meth:`problems` names
each impossible field in a sentence a person understands; nothing impossible ever reaches the
broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.errors import FieldError, InvalidRequest
from bot.limits import (
    LINK_COUNT_RANGE,
    MAX_DEVICES,
    MAX_LINKS,
    NO_LINKS,
    TOO_MANY_DEVICES,
    TOO_MANY_LINKS,
)
from bot.text_safety import disguise_problem
from bot.upstream.instant_connect.config import DEFAULT_AUDIENCE

MAX_SUB_LENGTH = 128
BROKER_DEFAULT_LIFETIME = 15 * 60
MILLISECONDS_THRESHOLD = 100_000_000_000  # seconds after 1970 in year 5138: surely milliseconds

VERTICALS = ("gen", "hc")
JWE_ALGS = ("PBES2-HS256+A128KW", "PBES2-HS384+A192KW", "PBES2-HS512+A256KW")
ENCS = ("A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM")
JWS_ALGS = ("HS256", "HS384", "HS512")

_SIP_URI = re.compile(
    r"^(?:sips?:)?[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$"
)


def is_sip_uri(text: str) -> bool:
    """``name@host.domain``, optionally with a ``sip:`` scheme, as video devices are addressed."""
    return len(text) <= 254 and bool(_SIP_URI.match(text))


@dataclass(frozen=True)
class MeetingRequest:
    """One call to ``POST /api/v2/joseencrypt``, in Python names."""

    sub: str
    nbf: int | None = None
    exp: int | None = None
    devices: tuple[str, ...] = ()
    num_host: int | None = None
    num_guest: int | None = None
    provide_short_urls: bool | None = None
    vertical_type: str | None = None
    login_url_for_host: bool | None = None
    jwe_alg: str | None = None
    salt_length: int | None = None
    iterations: int | None = None
    enc: str | None = None
    jws_alg: str | None = None
    aud: str = DEFAULT_AUDIENCE

    @property
    def hosts(self) -> int:
        """Host links the broker will return (it defaults to one)."""
        return 1 if self.num_host is None else self.num_host

    @property
    def guests(self) -> int:
        """Guest links the broker will return (it defaults to one)."""
        return 1 if self.num_guest is None else self.num_guest

    def window(self, now: float) -> tuple[int, int]:
        """The effective ``nbf`` and ``exp``, with the broker's defaults filled in."""
        nbf = self.nbf if self.nbf is not None else int(now)
        exp = self.exp if self.exp is not None else int(now) + BROKER_DEFAULT_LIFETIME
        return nbf, exp

    def problems(self, now: float) -> list[FieldError]:
        """Everything wrong with this request, one sentence per field; empty when it can be sent."""
        errors = [*_sub_problems(self.sub), *_time_problems(self, now), *_count_problems(self)]
        errors += [
            FieldError("jwt.flow", f"'{uri[:80]}' is not a SIP address like room@example.com.")
            for uri in self.devices
            if not is_sip_uri(uri)
        ]
        if len(self.devices) > MAX_DEVICES:
            errors.append(FieldError("jwt.flow", TOO_MANY_DEVICES))
        errors += _choice_problems(self)
        errors += _range_problem("saltLength", self.salt_length, 8, 128)
        errors += _range_problem("iterations", self.iterations, 1000, 32767)
        if not self.aud.strip():
            errors.append(FieldError("aud", "The audience must not be empty."))
        return errors

    def check(self, now: float) -> None:
        """Raise InvalidRequest naming every problem, so nothing impossible is sent."""
        errors = self.problems(now)
        if errors:
            raise InvalidRequest(errors)

    def to_body(self) -> dict[str, Any]:
        """The JSON body, leaving out what was not set so the broker's defaults apply."""
        jwt: dict[str, Any] = {"sub": self.sub}
        if self.nbf is not None:
            jwt["nbf"] = self.nbf
        if self.exp is not None:
            jwt["exp"] = self.exp
        if self.devices:
            jwt["flow"] = {"id": "sip-no-knock", "data": [{"uri": uri} for uri in self.devices]}
        optional = {
            "numHost": self.num_host,
            "numGuest": self.num_guest,
            "provideShortUrls": self.provide_short_urls,
            "verticalType": self.vertical_type,
            "loginUrlForHost": self.login_url_for_host,
            "jweAlg": self.jwe_alg,
            "saltLength": self.salt_length,
            "iterations": self.iterations,
            "enc": self.enc,
            "jwsAlg": self.jws_alg,
        }
        body: dict[str, Any] = {"jwt": jwt, "aud": self.aud}
        body.update({name: value for name, value in optional.items() if value is not None})
        return body


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sub_problems(sub: str) -> list[FieldError]:
    if not isinstance(sub, str) or not sub.strip():
        return [FieldError("jwt.sub", "The meeting subject must not be empty.")]
    if len(sub) > MAX_SUB_LENGTH:
        return [FieldError("jwt.sub", f"Keep the subject id within {MAX_SUB_LENGTH} characters.")]
    problem = disguise_problem(sub)
    return [FieldError("jwt.sub", problem)] if problem else []


def _time_problems(request: MeetingRequest, now: float) -> list[FieldError]:
    errors = []
    for name, value in (("jwt.nbf", request.nbf), ("jwt.exp", request.exp)):
        if value is None:
            continue
        if not _is_int(value) or value < 0:
            errors.append(FieldError(name, "Times must be whole seconds since 1970 (epoch)."))
        elif value >= MILLISECONDS_THRESHOLD:
            errors.append(
                FieldError(name, "This time looks like milliseconds; the API wants epoch seconds.")
            )
    if errors:
        return errors
    nbf, exp = request.window(now)
    if exp <= now:
        return [FieldError("jwt.exp", "The links would already have expired: pick a later end.")]
    if nbf >= exp:
        detail = (
            "The start must be before the end."
            if request.exp is not None
            else "Without an end time the broker ends the links 15 minutes after now, which is "
            "before this start: set an end (exp) too."
        )
        return [FieldError("jwt.exp" if request.exp is not None else "jwt.nbf", detail)]
    return []


def _count_problems(request: MeetingRequest) -> list[FieldError]:
    errors = []
    for name, value in (("numHost", request.num_host), ("numGuest", request.num_guest)):
        if value is not None and (not _is_int(value) or not 0 <= value <= MAX_LINKS):
            errors.append(FieldError(name, LINK_COUNT_RANGE))
    if errors:
        return errors
    total = request.hosts + request.guests
    if total > MAX_LINKS:
        return [FieldError("numHost", TOO_MANY_LINKS)]
    if total == 0:
        return [FieldError("numHost", NO_LINKS)]
    return []


def _choice_problems(request: MeetingRequest) -> list[FieldError]:
    choices = (
        ("verticalType", request.vertical_type, VERTICALS),
        ("jweAlg", request.jwe_alg, JWE_ALGS),
        ("enc", request.enc, ENCS),
        ("jwsAlg", request.jws_alg, JWS_ALGS),
    )
    errors = [
        FieldError(name, f"Must be one of {', '.join(allowed)}.")
        for name, value, allowed in choices
        if value is not None and value not in allowed
    ]
    for name, value in (
        ("provideShortUrls", request.provide_short_urls),
        ("loginUrlForHost", request.login_url_for_host),
    ):
        if value is not None and not isinstance(value, bool):
            errors.append(FieldError(name, "Must be true or false."))
    return errors


def _range_problem(name: str, value: int | None, low: int, high: int) -> list[FieldError]:
    if value is None or (_is_int(value) and low <= value <= high):
        return []
    return [FieldError(name, f"Must be a whole number from {low} to {high}.")]
