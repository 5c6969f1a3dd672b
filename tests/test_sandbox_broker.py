"""The sandbox's Instant Connect broker: request validation, real ciphers, short URLs, seeding."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator

import pytest
import requests
from joserfc.errors import JoseError

from bot.devtools.sandbox import Sandbox
from tests.support.sandbox import bot_session

AUD = "a4d886b0-979f-4e2c-a958-3e8c14605e51"
MINIMAL = {"jwt": {"sub": "visit-42"}, "aud": AUD}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=5) as sandbox:
        yield sandbox


def encrypt(sb: Sandbox, body: object) -> requests.Response:
    return bot_session(sb).post(sb.broker_url + "/api/v2/joseencrypt", json=body)


def salt_length(header: dict) -> int:
    p2s = header["p2s"]
    return len(base64.urlsafe_b64decode(p2s + "=" * (-len(p2s) % 4)))


def test_broker_needs_the_bot_token(sb: Sandbox) -> None:
    response = requests.post(sb.broker_url + "/api/v2/joseencrypt", json=MINIMAL)
    assert response.status_code == 401
    assert response.json()["trackingId"] == response.headers["Trackingid"]
    assert "access token" in response.json()["errors"][0]["description"]


def with_jwt(**claims: object) -> dict:
    return {"jwt": {"sub": "s", **claims}, "aud": AUD}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([MINIMAL], "JSON object"),
        ({"aud": AUD}, "jwt is required"),
        ({"jwt": "s", "aud": AUD}, "jwt is required"),
        ({"jwt": {}, "aud": AUD}, "jwt.sub"),
        ({"jwt": {"sub": ""}, "aud": AUD}, "jwt.sub"),
        ({"jwt": {"sub": 7}, "aud": AUD}, "jwt.sub"),
        ({"jwt": {"sub": "s"}}, "aud is required"),
        ({"jwt": {"sub": "s"}, "aud": "my-org-audience"}, "aud must be"),
        (with_jwt(nbf="1700000000"), "jwt.nbf"),
        (with_jwt(exp=1700000000.5), "jwt.exp"),
        (with_jwt(exp=True), "jwt.exp"),
        (with_jwt(nbf=1700000000, exp=1700000000), "after jwt.nbf"),
        (with_jwt(Nbf=1671480433000), "jwt.Nbf"),
        (with_jwt(flow={"id": "knock", "data": []}), "jwt.flow.id"),
        (with_jwt(flow={"id": "sip-no-knock"}), "jwt.flow.data"),
        (with_jwt(flow={"id": "sip-no-knock", "data": [{"uri": ""}]}), "jwt.flow.data"),
        (with_jwt(flow={"id": "sip-no-knock", "data": ["a@b.c"]}), "jwt.flow.data"),
        ({**MINIMAL, "numHost": 26}, "numHost"),
        ({**MINIMAL, "numHost": -1}, "numHost"),
        ({**MINIMAL, "numHost": True}, "numHost"),
        ({**MINIMAL, "numGuest": 1.0}, "numGuest"),
        ({**MINIMAL, "numGuest": "2"}, "numGuest"),
        ({**MINIMAL, "numHost": 0, "numGuest": 0}, "numHost + numGuest"),
        ({**MINIMAL, "numHost": 13, "numGuest": 13}, "numHost + numGuest"),
        ({**MINIMAL, "provideShortUrls": "true"}, "provideShortUrls"),
        ({**MINIMAL, "loginUrlForHost": 0}, "loginUrlForHost"),
        ({**MINIMAL, "verticalType": "healthcare"}, "verticalType"),
        ({**MINIMAL, "jweAlg": "dir"}, "jweAlg"),
        ({**MINIMAL, "enc": "A512GCM"}, "enc"),
        ({**MINIMAL, "jwsAlg": "RS256"}, "jwsAlg"),
        ({**MINIMAL, "saltLength": 7}, "saltLength"),
        ({**MINIMAL, "saltLength": 129}, "saltLength"),
        ({**MINIMAL, "iterations": 999}, "iterations"),
        ({**MINIMAL, "iterations": 32768}, "iterations"),
        ({**MINIMAL, "numHosts": 2}, "numHosts"),
    ],
)
def test_validation_names_the_problem(sb: Sandbox, body: object, fragment: str) -> None:
    response = encrypt(sb, body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert fragment in error["message"] and error["errors"][0]["description"] == error["message"]
    assert error["trackingId"].startswith("ROUTER_")


def test_invalid_json_is_refused(sb: Sandbox) -> None:
    response = bot_session(sb).post(sb.broker_url + "/api/v2/joseencrypt", data=b"{")
    assert response.status_code == 400 and "JSON" in response.json()["message"]


def test_minimal_request_uses_the_documented_defaults(sb: Sandbox) -> None:
    before = int(time.time())
    response = encrypt(sb, MINIMAL)
    after = int(time.time())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"host", "guest"}
    [host], [guest] = body["host"], body["guest"]
    assert set(host) == {"cipher"} and set(guest) == {"cipher"}
    header, claims = sb.decrypt(host["cipher"])
    assert (header["alg"], header["enc"]) == ("PBES2-HS512+A256KW", "A256GCM")
    assert 1000 <= header["p2c"] <= 32767 and 8 <= salt_length(header) <= 128
    assert sb.unseal(host["cipher"])[1]["alg"] == "HS512"
    assert claims["sub"] == "visit-42" and claims["aud"] == AUD
    assert before <= claims["iat"] <= after and claims["exp"] == claims["iat"] + 900
    assert "nbf" not in claims and "flow" not in claims and "short" not in claims
    assert (claims["role"], claims["index"], claims["verticalType"]) == ("host", 0, "hc")
    assert claims["loginUrlForHost"] is True
    assert sb.decrypt(guest["cipher"])[1]["role"] == "guest"
    assert host["cipher"].startswith("eyJwMnMiOi")  # '{"p2s":', like the broker's own ciphers


@pytest.mark.parametrize(
    ("jwe_alg", "enc", "jws_alg", "salt", "iterations"),
    [
        ("PBES2-HS256+A128KW", "A128CBC-HS256", "HS256", 8, 1000),
        ("PBES2-HS384+A192KW", "A192GCM", "HS384", 77, 20000),
        ("PBES2-HS512+A256KW", "A256CBC-HS512", "HS512", 128, 32767),
    ],
)
def test_requested_algorithms_salt_and_iterations_are_used(
    sb: Sandbox, jwe_alg: str, enc: str, jws_alg: str, salt: int, iterations: int
) -> None:
    flow = {"id": "sip-no-knock", "data": [{"uri": "exam-room-1@clinic.example.com"}]}
    body = {
        "jwt": {"sub": "visit-43", "nbf": 1900000000, "exp": 1900003600, "flow": flow},
        "aud": AUD,
        "numHost": 2,
        "numGuest": 3,
        "verticalType": "gen",
        "loginUrlForHost": False,
        "jweAlg": jwe_alg,
        "enc": enc,
        "jwsAlg": jws_alg,
        "saltLength": salt,
        "iterations": iterations,
    }
    answer = encrypt(sb, body).json()
    assert (len(answer["host"]), len(answer["guest"])) == (2, 3)
    for role in ("host", "guest"):
        for index, entry in enumerate(answer[role]):
            jwe_header, jws_header, claims = sb.unseal(entry["cipher"])
            assert (jwe_header["alg"], jwe_header["enc"]) == (jwe_alg, enc)
            assert (jwe_header["p2c"], salt_length(jwe_header)) == (iterations, salt)
            assert jws_header["alg"] == jws_alg
            assert (claims["role"], claims["index"]) == (role, index)
            assert (claims["nbf"], claims["exp"], claims["flow"]) == (1900000000, 1900003600, flow)
            assert (claims["verticalType"], claims["loginUrlForHost"]) == ("gen", False)


def test_default_salt_length_and_iterations_are_drawn_per_request(sb: Sandbox) -> None:
    headers = [sb.decrypt(encrypt(sb, MINIMAL).json()["host"][0]["cipher"])[0] for _ in range(6)]
    lengths = {salt_length(h) for h in headers}
    counts = {h["p2c"] for h in headers}
    assert len(lengths) > 1 and all(8 <= n <= 128 for n in lengths)
    assert len(counts) > 1 and all(1000 <= n <= 32767 for n in counts)


def test_short_urls(sb: Sandbox) -> None:
    answer = encrypt(sb, {**MINIMAL, "provideShortUrls": True, "numGuest": 4}).json()
    assert answer["baseUrl"] == "https://instant.webex.com/visit/"
    entries = answer["host"] + answer["guest"]
    shorts = [e["short"] for e in entries]
    assert all(re.fullmatch(r"[A-Za-z0-9]{7}", s) for s in shorts) and len(set(shorts)) == 5
    assert [sb.decrypt(e["cipher"])[1]["short"] for e in entries] == shorts


def test_cipher_from_another_seed_does_not_open(sb: Sandbox) -> None:
    cipher = encrypt(sb, MINIMAL).json()["host"][0]["cipher"]
    with Sandbox(seed=6) as other, pytest.raises(JoseError):
        other.decrypt(cipher)
    with pytest.raises((JoseError, ValueError)):
        sb.decrypt(cipher[:-4] + "AAAA")


def snapshot(seed: int) -> dict:
    """Everything that must be reproducible from a seed."""
    with Sandbox(seed=seed) as box:
        alice = box.add_person("alice@example.com", "Alice")
        room = box.add_room("Clinic", members=[alice])
        message = box.post_message(alice, room, "meet x")
        answer = encrypt(box, {**MINIMAL, "provideShortUrls": True}).json()
        headers = [box.decrypt(e["cipher"])[0] for e in answer["host"] + answer["guest"]]
        return {
            "token": box.bot_token,
            "ids": [box.bot["id"], box.org_id, alice["id"], room["id"], message["id"]],
            "shorts": [e["short"] for e in answer["host"] + answer["guest"]],
            "iterations": [h["p2c"] for h in headers],
            "salt_lengths": [salt_length(h) for h in headers],
        }


def test_same_seed_same_world_and_other_seed_another() -> None:
    first, again, other = snapshot(21), snapshot(21), snapshot(22)
    assert first == again
    assert all(first[key] != other[key] for key in first)
