"""The Instant Connect broker (POST /api/v2/joseencrypt): validate the request, issue ciphers.

Validation follows the guide's reference table and refuses anything else with a 400 naming
the field, so a bot's mistakes show up in tests instead of in a real meeting link.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .ciphers import ENCS, JWE_ALGS, JWS_ALGS, seal
from .ids import short_code
from .responses import ApiError, Call, json_response, read_json_object

AUDIENCE = "a4d886b0-979f-4e2c-a958-3e8c14605e51"
BASE_URL = "https://instant.webex.com/visit/"
MAX_LINKS = 25
DEFAULT_VALIDITY_SECONDS = 900
TOP_KEYS = {
    "jwt", "aud", "numHost", "numGuest", "provideShortUrls", "verticalType", "loginUrlForHost",
    "jweAlg", "saltLength", "iterations", "enc", "jwsAlg",
}  # fmt: skip
JWT_KEYS = {"sub", "nbf", "exp", "flow"}


def _is_int(value: object) -> bool:
    """JSON integers only: not booleans, not floats."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    """Read an optional integer field within [low, high]; None when absent."""
    if key not in body:
        return None
    value = body[key]
    if not _is_int(value) or not low <= value <= high:
        raise ApiError(400, f"{key} must be an integer from {low} to {high}.")
    return int(value)


def _count(body: dict[str, Any], key: str) -> int:
    """Read numHost or numGuest (0 to 25, default 1)."""
    value = _int(body, key, 0, MAX_LINKS)
    return 1 if value is None else value


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    """Read an optional JSON boolean field."""
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"{key} must be a boolean.")
    return value


def _choice(body: dict[str, Any], key: str, options: tuple[str, ...], default: str) -> str:
    """Read an optional string field limited to a set of values."""
    value = body.get(key, default)
    if value not in options:
        raise ApiError(400, f"{key} must be one of {', '.join(options)}.")
    return str(value)


def _unknown(found: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse fields the guide does not define (catches "Nbf"/"Exp" and typos)."""
    extra = sorted(set(found) - allowed)
    if extra:
        raise ApiError(400, f"Unknown field {where}{extra[0]}.")


def _flow(value: object) -> dict[str, Any]:
    """Validate jwt.flow: {"id": "sip-no-knock", "data": [{"uri": ...}, ...]}."""
    if not isinstance(value, dict) or value.get("id") != "sip-no-knock":
        raise ApiError(400, 'jwt.flow.id must be "sip-no-knock".')
    data = value.get("data")
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and isinstance(d.get("uri"), str) and d["uri"] for d in data
    ):
        raise ApiError(400, "jwt.flow.data must be a list of {uri: string}.")
    return {"id": "sip-no-knock", "data": [{"uri": d["uri"]} for d in data]}


@dataclass(frozen=True)
class LinkRequest:
    """A validated joseencrypt request; None means the field was not given."""

    sub: str
    nbf: int | None
    exp: int | None
    flow: dict[str, Any] | None
    num_host: int
    num_guest: int
    provide_short_urls: bool
    vertical_type: str
    login_url_for_host: bool
    jwe_alg: str
    enc: str
    jws_alg: str
    salt_length: int | None
    iterations: int | None


def parse_link_request(body: object) -> LinkRequest:
    """Validate a joseencrypt body as the Instant Connect guide documents it."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    _unknown(body, TOP_KEYS, "")
    claims = body.get("jwt")
    if not isinstance(claims, dict):
        raise ApiError(400, "jwt is required and must be an object.")
    _unknown(claims, JWT_KEYS, "jwt.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise ApiError(400, "jwt.sub is required and must be a non-empty string.")
    if "aud" not in body:
        raise ApiError(400, "aud is required.")
    if body["aud"] != AUDIENCE:
        raise ApiError(400, f"aud must be {AUDIENCE}.")
    for key in ("nbf", "exp"):
        if key in claims and not _is_int(claims[key]):
            raise ApiError(400, f"jwt.{key} must be an integer (epoch seconds).")
    if "nbf" in claims and "exp" in claims and claims["exp"] <= claims["nbf"]:
        raise ApiError(400, "jwt.exp must be after jwt.nbf.")
    num_host, num_guest = _count(body, "numHost"), _count(body, "numGuest")
    if not 1 <= num_host + num_guest <= MAX_LINKS:
        raise ApiError(400, f"numHost + numGuest must be from 1 to {MAX_LINKS}.")
    return LinkRequest(
        sub=claims["sub"],
        nbf=claims.get("nbf"),
        exp=claims.get("exp"),
        flow=_flow(claims["flow"]) if "flow" in claims else None,
        num_host=num_host,
        num_guest=num_guest,
        provide_short_urls=_bool(body, "provideShortUrls", False),
        vertical_type=_choice(body, "verticalType", ("gen", "hc"), "hc"),
        login_url_for_host=_bool(body, "loginUrlForHost", True),
        jwe_alg=_choice(body, "jweAlg", JWE_ALGS, "PBES2-HS512+A256KW"),
        enc=_choice(body, "enc", ENCS, "A256GCM"),
        jws_alg=_choice(body, "jwsAlg", JWS_ALGS, "HS512"),
        salt_length=_int(body, "saltLength", 8, 128),
        iterations=_int(body, "iterations", 1000, 32767),
    )


class Broker:
    """Issue host and guest ciphers; seeded draws make shorts and defaults reproducible."""

    def __init__(self, secret: bytes, rng: random.Random, lock: threading.Condition) -> None:
        self._secret = secret
        self._rng = rng
        self._lock = lock

    def rules(self) -> list[Rule]:
        """The route this module serves."""
        return [Rule("/api/v2/joseencrypt", methods=["POST"], endpoint=self.joseencrypt)]

    def joseencrypt(self, call: Call) -> Response:
        """POST /api/v2/joseencrypt."""
        return json_response(self.issue(read_json_object(call.request)))

    def issue(self, body: object) -> dict[str, Any]:
        """Answer a joseencrypt body with {"host": [...], "guest": [...]} (and baseUrl)."""
        request = parse_link_request(body)
        now = int(time.time())
        roles = [("host", i) for i in range(request.num_host)]
        roles += [("guest", i) for i in range(request.num_guest)]
        with self._lock:
            salt_length = request.salt_length
            if salt_length is None:
                salt_length = self._rng.randint(8, 128)
            iterations = request.iterations
            if iterations is None:
                iterations = self._rng.randint(1000, 32767)
            draws = [(self._rng.randbytes(salt_length), short_code(self._rng)) for _ in roles]
        answer: dict[str, Any] = {"host": [], "guest": []}
        for (role, index), (salt, short) in zip(roles, draws, strict=True):
            entry = {"cipher": self._cipher(request, role, index, now, short, salt, iterations)}
            if request.provide_short_urls:
                entry["short"] = short
            answer[role].append(entry)
        if request.provide_short_urls:
            answer["baseUrl"] = BASE_URL
        return answer

    def _cipher(
        self,
        request: LinkRequest,
        role: str,
        index: int,
        now: int,
        short: str,
        salt: bytes,
        iterations: int,
    ) -> str:
        """Seal the claims of one link."""
        claims: dict[str, Any] = {"sub": request.sub, "aud": AUDIENCE}
        if request.nbf is not None:
            claims["nbf"] = request.nbf
        claims["exp"] = request.exp if request.exp is not None else now + DEFAULT_VALIDITY_SECONDS
        claims["iat"] = now
        if request.flow is not None:
            claims["flow"] = request.flow
        claims.update(
            role=role,
            index=index,
            verticalType=request.vertical_type,
            loginUrlForHost=request.login_url_for_host,
        )
        if request.provide_short_urls:
            claims["short"] = short
        return seal(
            claims,
            self._secret,
            jws_alg=request.jws_alg,
            jwe_alg=request.jwe_alg,
            enc=request.enc,
            salt=salt,
            iterations=iterations,
        )
