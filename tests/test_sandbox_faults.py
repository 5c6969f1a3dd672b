"""Injected faults (status, Retry-After, latency, drop, times) and waiting on the sandbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from bot.devtools.sandbox import Fault, Sandbox
from tests.support.sandbox import bot_session

BROKER = "/api/v2/joseencrypt"
MINIMAL = {"jwt": {"sub": "s"}, "aud": "a4d886b0-979f-4e2c-a958-3e8c14605e51"}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=9) as sandbox:
        yield sandbox


@pytest.fixture
def api(sb: Sandbox) -> requests.Session:
    return bot_session(sb)


def me(sb: Sandbox, api: requests.Session) -> requests.Response:
    return api.get(sb.webex_base_url + "people/me")


def test_status_fault_for_a_number_of_times(sb: Sandbox, api: requests.Session) -> None:
    sb.fail("POST", BROKER, status=503, times=2)
    statuses = [api.post(sb.broker_url + BROKER, json=MINIMAL).status_code for _ in range(2)]
    assert statuses == [503, 503] and sb.faults == []
    assert api.post(sb.broker_url + BROKER, json=MINIMAL).status_code == 200
    assert [r.status for r in sb.requests_matching("POST", BROKER)] == [503, 503, 200]
    assert all(r.json == MINIMAL for r in sb.requests)


def test_error_fault_answers_in_webex_shape(sb: Sandbox, api: requests.Session) -> None:
    sb.fail("GET", "/v1/people/me", status=502, times=1)
    response = me(sb, api)
    assert response.status_code == 502
    assert response.json()["message"] == "Bad Gateway"
    assert response.json()["trackingId"] == response.headers["Trackingid"]
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize("value", ["2", "0.5", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
def test_retry_after_is_sent_verbatim(sb: Sandbox, api: requests.Session, value: str) -> None:
    sb.fail("POST", BROKER, status=429, times=1, retry_after=value)
    response = api.post(sb.broker_url + BROKER, json=MINIMAL)
    assert response.status_code == 429 and response.headers["Retry-After"] == value
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Too Many Requests" in response.text


def test_custom_fault_bodies(sb: Sandbox, api: requests.Session) -> None:
    sb.fail("GET", "/v1/people/me", status=403, times=1, body={"message": "not activated"})
    sb.fail("GET", "/v1/people/me", status=500, times=1, body="plain failure")
    first, second = me(sb, api), me(sb, api)
    assert (first.status_code, first.json()) == (403, {"message": "not activated"})
    assert (second.status_code, second.text) == (500, "plain failure")


def test_latency_without_status_answers_normally_but_late(
    sb: Sandbox, api: requests.Session
) -> None:
    sb.fail("GET", "/v1/people/me", status=None, latency=0.3, times=1)
    started = time.monotonic()
    response = me(sb, api)
    assert response.status_code == 200 and time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert me(sb, api).status_code == 200 and time.monotonic() - started < 0.3


def test_latency_outlasting_the_client_timeout(sb: Sandbox, api: requests.Session) -> None:
    sb.fail("POST", BROKER, status=None, latency=1.0, times=1)
    with pytest.raises(requests.Timeout):
        api.post(sb.broker_url + BROKER, json=MINIMAL, timeout=0.2)


def test_drop_closes_the_connection_without_an_answer(sb: Sandbox, api: requests.Session) -> None:
    sb.fail("POST", BROKER, drop=True, times=1)
    with pytest.raises(requests.ConnectionError):
        api.post(sb.broker_url + BROKER, json=MINIMAL)
    assert api.post(sb.broker_url + BROKER, json=MINIMAL).status_code == 200
    assert [r.status for r in sb.requests] == [0, 200]


def test_fault_until_cleared_and_prefix_paths(sb: Sandbox, api: requests.Session) -> None:
    sb.fail("*", "/v1/people*", status=500)
    assert [me(sb, api).status_code for _ in range(3)] == [500, 500, 500]
    assert api.post(sb.broker_url + BROKER, json=MINIMAL).status_code == 200
    sb.clear_faults()
    assert me(sb, api).status_code == 200


def test_faults_apply_before_authentication(sb: Sandbox) -> None:
    sb.fail("GET", "/v1/people/me", status=503, times=1)
    assert requests.get(sb.webex_base_url + "people/me").status_code == 503
    assert requests.get(sb.webex_base_url + "people/me").status_code == 401


def test_fault_specs_parse_and_bad_ones_are_refused() -> None:
    fault = Fault.parse(
        "POST /api/v2/joseencrypt status=503 times=2 retry_after=1 latency=0.5 drop"
    )
    assert fault == Fault("POST", BROKER, 503, 2, "1", 0.5, True)
    assert Fault.parse("GET /v1/* latency=1").status is None
    assert Fault.parse("GET /v1/* status=500 times=always").times is None
    for spec in ["GET", "GET /x status=abc", "GET /x colour=red", "GET /x", "GET /x status=700"]:
        with pytest.raises(ValueError):
            Fault.parse(spec)
    with pytest.raises(ValueError):
        Fault("GET", "/x", status=500, times=0)


def test_wait_for_returns_the_truthy_value_once_it_appears(
    sb: Sandbox, api: requests.Session
) -> None:
    worker = threading.Thread(target=me, args=(sb, api))
    worker.start()
    found = sb.wait_for(lambda: sb.requests_matching("GET", "/v1/people/me"), timeout=5)
    worker.join()
    assert [r.status for r in found] == [200]


def test_wait_for_times_out_with_a_helpful_message(sb: Sandbox, api: requests.Session) -> None:
    me(sb, api)

    def broker_was_called() -> bool:
        return bool(sb.requests_matching("POST", BROKER))

    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        sb.wait_for(broker_was_called, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 2
    assert "broker_was_called" in str(raised.value) and "GET /v1/people/me -> 200" in str(
        raised.value
    )


def test_stop_cuts_an_injected_latency_short() -> None:
    sandbox = Sandbox(seed=1).start()
    sandbox.fail("GET", "/v1/people/me", status=None, latency=30, times=1)
    outcome: list[int] = []
    worker = threading.Thread(
        target=lambda: outcome.append(me(sandbox, bot_session(sandbox)).status_code)
    )
    worker.start()
    sandbox.wait_for(
        lambda: not sandbox.faults, timeout=5
    )  # the request is waiting out its latency
    started = time.monotonic()
    sandbox.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 5 and not worker.is_alive()
    assert outcome == [200]
