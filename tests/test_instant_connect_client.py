"""The Instant Connect client against the sandbox broker: what it sends, builds and raises."""

from __future__ import annotations

import base64
import logging
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from bot.devtools.sandbox import Sandbox
from bot.errors import (
    InvalidRequest,
    MalformedResponse,
    NotAuthorized,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
    Unreachable,
    UpstreamError,
)
from bot.secret import Secret
from bot.upstream.instant_connect import (
    InstantConnectClient,
    MeetingLinks,
    MeetingRequest,
    unique_sub,
)
from bot.upstream.instant_connect.config import InstantConnectConfig
from bot.upstream.retry import RetryPolicy
from tests.support.pools import all_at_once, pool_log

PATH = "/api/v2/joseencrypt"
AUDIENCE = "a4d886b0-979f-4e2c-a958-3e8c14605e51"
VISIT = "https://instant.webex.com/visit/"
TRACKING = re.compile(r"^ROUTER_[0-9A-F-]{36}$")
NBF = 1_900_000_000  # 2030: always in the future, so the request is valid whenever tests run
EXP = NBF + 7200
MAX_ATTEMPTS = 3
BASE_DELAY = 0.25
MAX_WAIT = 2.0
JITTER = 0.0  # the harness's jitter draw: Retry-After exactly, backoff at half (its lowest)


def backoff(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` when no Retry-After came, at draw JITTER."""
    full = min(BASE_DELAY * 2 ** (attempt - 1), MAX_WAIT)
    return full / 2 * (1 + JITTER)


JSON_NAMES = {
    "num_host": "numHost",
    "num_guest": "numGuest",
    "provide_short_urls": "provideShortUrls",
    "vertical_type": "verticalType",
    "login_url_for_host": "loginUrlForHost",
    "jwe_alg": "jweAlg",
    "salt_length": "saltLength",
    "iterations": "iterations",
    "enc": "enc",
    "jws_alg": "jwsAlg",
}


class Harness:
    """A client aimed at the sandbox, with its waits and every answer's tracking id recorded."""

    def __init__(self, box: Sandbox, token: str | None = None, **config: Any) -> None:
        self.box = box
        self.waits: list[float] = []
        self.tracking_ids: list[str | None] = []
        session = requests.Session()
        session.hooks["response"].append(self._seen)
        retry = RetryPolicy(
            max_attempts=MAX_ATTEMPTS, base_delay=BASE_DELAY, max_wait=MAX_WAIT,
            sleep=self.waits.append, jitter=lambda: JITTER,
        )
        config.setdefault("read_timeout", 5.0)
        self.client = InstantConnectClient(
            Secret(token or box.bot_token),
            InstantConnectConfig(broker_url=box.broker_url, retry=retry, **config),
            session=session,
        )

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.tracking_ids.append(response.headers.get("Trackingid"))

    def create(self, **params: Any) -> MeetingLinks:
        params.setdefault("sub", "Consult-1")
        return self.client.create_links(MeetingRequest(**params))

    @property
    def sent(self) -> list[Any]:
        """Every joseencrypt request the sandbox received, in order."""
        return self.box.requests_matching("POST", PATH)

    def fails(self, error: type[UpstreamError], **params: Any) -> UpstreamError:
        """Call, expect exactly this error class, and check it carries the last tracking id."""
        with pytest.raises(error) as caught:
            self.create(**params)
        assert type(caught.value) is error
        assert caught.value.tracking_id == self.tracking_ids[-1]
        assert TRACKING.match(caught.value.tracking_id or "")
        return caught.value


@pytest.fixture
def harness(sandbox: Sandbox) -> Harness:
    return Harness(sandbox)


def cipher_of(url: str) -> str:
    _, marker, cipher = url.partition("data=")
    assert marker and cipher
    return cipher


def expected_body(sub: str, params: dict[str, Any]) -> dict[str, Any]:
    jwt: dict[str, Any] = {"sub": sub}
    jwt.update({key: params[key] for key in ("nbf", "exp") if key in params})
    if params.get("devices"):
        jwt["flow"] = {"id": "sip-no-knock", "data": [{"uri": uri} for uri in params["devices"]]}
    body = {"jwt": jwt, "aud": AUDIENCE}
    body.update({JSON_NAMES[key]: value for key, value in params.items() if key in JSON_NAMES})
    return body


COMBINATIONS = [
    pytest.param({}, id="broker-defaults"),
    pytest.param(
        {"num_host": 0, "num_guest": 25, "jwe_alg": "PBES2-HS256+A128KW", "enc": "A128CBC-HS256",
         "jws_alg": "HS256", "salt_length": 8, "iterations": 1000},
        id="no-host-25-guests-hs256",
    ),
    pytest.param(
        {"num_host": 2, "num_guest": 3, "provide_short_urls": True, "vertical_type": "hc",
         "login_url_for_host": False, "jwe_alg": "PBES2-HS384+A192KW", "enc": "A192CBC-HS384",
         "jws_alg": "HS384", "salt_length": 128, "iterations": 32767,
         "devices": ("exam-room-1@clinic.example.com", "sip:cart-7@clinic.example.com")},
        id="short-hc-devices-hs384",
    ),
    pytest.param(
        {"num_host": 3, "num_guest": 0, "nbf": NBF, "exp": EXP, "provide_short_urls": False,
         "vertical_type": "gen", "login_url_for_host": True, "jwe_alg": "PBES2-HS512+A256KW",
         "enc": "A256CBC-HS512", "jws_alg": "HS512", "salt_length": 16, "iterations": 2000},
        id="window-gen-hs512",
    ),
    pytest.param(
        {"num_guest": 2, "exp": EXP, "enc": "A128GCM", "jwe_alg": "PBES2-HS512+A256KW",
         "jws_alg": "HS256", "provide_short_urls": True},
        id="a128gcm-short",
    ),
    pytest.param(
        {"num_host": 12, "num_guest": 13, "enc": "A192GCM", "jwe_alg": "PBES2-HS256+A128KW",
         "salt_length": 64},
        id="a192gcm-25-links",
    ),
    pytest.param(
        {"enc": "A256GCM", "jwe_alg": "PBES2-HS384+A192KW", "jws_alg": "HS512",
         "iterations": 5000, "devices": ("room@example.com",), "vertical_type": "hc"},
        id="a256gcm-device",
    ),
]


@pytest.mark.parametrize("params", COMBINATIONS)
def test_parameters_reach_the_broker_and_come_back_in_the_ciphers(harness, params):
    """Exactly the set parameters are sent; every cipher decrypts to the requested claims."""
    sub = unique_sub("Follow-up", "combination")
    before = int(time.time())
    links = harness.create(sub=sub, **params)
    after = int(time.time())

    [sent] = harness.sent
    assert sent.json == expected_body(sub, params)
    assert sent.headers["Authorization"] == "Bearer ***"

    hosts, guests = params.get("num_host", 1), params.get("num_guest", 1)
    assert (len(links.hosts), len(links.guests)) == (hosts, guests)
    assert [link.label for link in links.all] == [f"Host {n}" for n in range(1, hosts + 1)] + [
        f"Guest {n}" for n in range(1, guests + 1)
    ]
    vertical = params.get("vertical_type", "gen")
    ciphers = [cipher_of(link.url) for link in links.all]
    assert len(set(ciphers)) == len(ciphers)
    for link, cipher in zip(links.all, ciphers, strict=True):
        page = "login" if link.role == "host" else "talk"
        assert link.url == f"https://instant.webex.com/{vertical}/v1/{page}?int=jose&v=1&data={cipher}"
        header, jws_header, claims = harness.box.unseal(cipher)

        assert header["alg"] == params.get("jwe_alg", "PBES2-HS512+A256KW")
        assert header["enc"] == params.get("enc", "A256GCM")
        salt = base64.urlsafe_b64decode(header["p2s"] + "=" * (-len(header["p2s"]) % 4))
        if "salt_length" in params:
            assert len(salt) == params["salt_length"]
        else:
            assert 8 <= len(salt) <= 128
        if "iterations" in params:
            assert header["p2c"] == params["iterations"]
        else:
            assert 1000 <= header["p2c"] <= 32767
        assert jws_header["alg"] == params.get("jws_alg", "HS512")

        assert claims["sub"] == sub
        assert claims["role"] == link.role
        assert claims["index"] == link.number - 1
        assert claims.get("nbf") == params.get("nbf")
        if "exp" in params:
            assert claims["exp"] == params["exp"]
        else:
            assert before + 900 <= claims["exp"] <= after + 900
        if params.get("devices"):
            assert claims["flow"] == {
                "id": "sip-no-knock", "data": [{"uri": uri} for uri in params["devices"]]
            }
        else:
            assert "flow" not in claims
        assert claims["verticalType"] == params.get("vertical_type", "hc")
        assert claims["loginUrlForHost"] == params.get("login_url_for_host", True)
        if params.get("provide_short_urls"):
            assert link.short_url == VISIT + claims["short"]
            assert link.best_url == link.short_url
        else:
            assert link.short_url is None
            assert "short" not in claims
            assert link.best_url == link.url

    assert links.sub == sub
    if "nbf" in params:
        assert links.nbf == params["nbf"]
    else:
        assert before <= links.nbf <= after
    if "exp" in params:
        assert links.exp == params["exp"]
    else:
        assert before + 900 <= links.exp <= after + 900


def test_custom_url_bases_from_the_config(sandbox):
    """Configured long-URL bases are used, with ``{vertical}`` filled in when present."""
    harness = Harness(
        sandbox,
        host_url_base="https://video.example.org/doctor?cipher=",
        guest_url_base="https://video.example.org/{vertical}/patient?cipher=",
    )
    links = harness.create(num_host=1, num_guest=2, vertical_type="hc")
    bases = {"host": "https://video.example.org/doctor?cipher=",
             "guest": "https://video.example.org/hc/patient?cipher="}
    for link in links.all:
        assert link.url.startswith(bases[link.role] + "ey")
        cipher = link.url.removeprefix(bases[link.role])
        assert harness.box.decrypt(cipher)[1]["role"] == link.role
    assert len(links.guests) == 2


def test_same_subject_different_keys_never_share_a_space(harness):
    """Different keys give different ``sub`` claims; the same key gives the same one."""
    def claimed_sub(key: str | None) -> str:
        links = harness.create(sub=unique_sub("Consultation", key), num_host=1, num_guest=1)
        subs = {harness.box.decrypt(cipher_of(link.url))[1]["sub"] for link in links.all}
        assert len(subs) == 1
        return subs.pop()

    first, again, other = claimed_sub("action-1"), claimed_sub("action-1"), claimed_sub("action-2")
    assert first == again
    assert first != other
    assert first.startswith("Consultation-") and other.startswith("Consultation-")
    assert claimed_sub(None) != claimed_sub(None)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"num_host": 26}, id="too-many-hosts"),
        pytest.param({"num_host": 13, "num_guest": 13}, id="more-than-25-together"),
        pytest.param({"num_host": 0, "num_guest": 0}, id="nobody"),
        pytest.param({"sub": ""}, id="empty-sub"),
        pytest.param({"exp": EXP * 1000}, id="exp-in-milliseconds"),
        pytest.param({"nbf": EXP, "exp": NBF}, id="ends-before-start"),
        pytest.param({"exp": int(time.time()) - 60}, id="already-expired"),
        pytest.param({"devices": ("notasip",)}, id="bad-device"),
        pytest.param({"jwe_alg": "RSA-OAEP"}, id="bad-jwe-alg"),
        pytest.param({"enc": "A512GCM"}, id="bad-enc"),
        pytest.param({"jws_alg": "RS256"}, id="bad-jws-alg"),
        pytest.param({"vertical_type": "edu"}, id="bad-vertical"),
        pytest.param({"salt_length": 7}, id="salt-too-short"),
        pytest.param({"iterations": 32768}, id="too-many-iterations"),
    ],
)
def test_invalid_requests_never_reach_the_broker(harness, params):
    """An impossible request raises InvalidRequest and the broker records nothing."""
    with pytest.raises(InvalidRequest) as caught:
        harness.create(**params)
    assert caught.value.errors
    assert harness.box.requests == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, Rejected), (401, NotAuthorized), (403, NotAuthorized), (404, Rejected),
     (500, Unavailable)],
)
def test_final_statuses_fail_after_one_attempt(harness, status, error):
    """400, 401, 403, 404 and a plain 500 are not retried and keep status and tracking id."""
    harness.box.fail("POST", PATH, status=status)
    raised = harness.fails(error)
    assert raised.status == status
    assert [r.status for r in harness.sent] == [status]
    assert harness.waits == []
    assert f"[HTTP {status}]" in str(raised) and raised.tracking_id in str(raised)


@pytest.mark.parametrize("status", [401, 403])
def test_not_authorized_explains_the_activation(harness, status):
    """The message says the token must belong to an org where Instant Connect is activated."""
    harness.box.fail("POST", PATH, status=status)
    message = str(harness.fails(NotAuthorized))
    assert "organisation where Instant Connect is activated" in message


def test_a_token_the_broker_does_not_know_is_not_authorized(sandbox):
    """A real 401 from the broker (wrong token) becomes NotAuthorized without the token."""
    harness = Harness(sandbox, token="wrong-token-4471")
    raised = harness.fails(NotAuthorized)
    assert raised.status == 401 and "access token" in raised.detail
    assert "wrong-token-4471" not in str(raised) + repr(raised)


def test_broker_refusal_keeps_its_reason(harness):
    """A 400 of the broker's own (unknown audience) is Rejected with the broker's words."""
    raised = harness.fails(Rejected, aud="an-org-specific-audience")
    assert raised.status == 400 and "aud must be" in raised.detail
    assert harness.sent[0].json["aud"] == "an-org-specific-audience"


def test_configured_audience_is_sent(sandbox):
    """``InstantConnectConfig.audience`` (IC_AUDIENCE) replaces the default ``aud``."""
    harness = Harness(sandbox, audience="an-org-specific-audience")
    raised = harness.fails(Rejected)
    assert "aud must be" in raised.detail
    assert [r.json["aud"] for r in harness.sent] == ["an-org-specific-audience"]


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("failures", [1, MAX_ATTEMPTS - 1])
def test_gateway_errors_are_retried_until_success(harness, status, failures):
    """502, 503 and 504 are retried with backoff; attempts = failures + 1."""
    harness.box.fail("POST", PATH, status=status, times=failures)
    links = harness.create(num_guest=2)
    assert len(links.guests) == 2
    assert [r.status for r in harness.sent] == [status] * failures + [200]
    assert harness.waits == [backoff(n) for n in range(1, failures + 1)]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_give_up_after_max_attempts(harness, status):
    """A gateway error that persists ends in Unavailable after max_attempts."""
    harness.box.fail("POST", PATH, status=status)
    raised = harness.fails(Unavailable)
    assert raised.status == status
    assert [r.status for r in harness.sent] == [status] * MAX_ATTEMPTS
    assert harness.waits == [backoff(1), backoff(2)]


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.fromtimestamp(time.time() + seconds_from_now, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        pytest.param("1", 1.0, 1.0, id="seconds"),
        pytest.param("0.2", 0.2, 0.2, id="fraction"),
        pytest.param("0", 0.0, 0.0, id="zero"),
        pytest.param(None, backoff(1), backoff(1), id="missing-uses-backoff"),
        pytest.param("soon, maybe", backoff(1), backoff(1), id="garbage-uses-backoff"),
        pytest.param("3600", MAX_WAIT, MAX_WAIT, id="capped-by-max-wait"),
        pytest.param("http-date+1.9", 0.5, 1.9, id="http-date"),
        pytest.param("http-date+600", MAX_WAIT, MAX_WAIT, id="http-date-capped"),
        pytest.param("http-date-60", 0.0, 0.0, id="http-date-in-the-past"),
    ],
)
def test_rate_limit_waits_as_told_then_succeeds(harness, retry_after, low, high):
    """A 429 is retried after Retry-After (seconds or date), else backoff, capped by max_wait."""
    if retry_after and retry_after.startswith("http-date"):
        retry_after = http_date(float(retry_after.removeprefix("http-date")))
    harness.box.fail("POST", PATH, status=429, times=1, retry_after=retry_after)
    links = harness.create()
    assert len(links.all) == 2
    assert [r.status for r in harness.sent] == [429, 200]
    [wait] = harness.waits
    assert low <= wait <= high


def test_rate_limit_beyond_max_attempts(harness):
    """A 429 that persists ends in RateLimited after max_attempts, tracking id from the header."""
    harness.box.fail("POST", PATH, status=429, retry_after="1")
    raised = harness.fails(RateLimited)
    assert raised.status == 429 and raised.retry_after == 1.0
    assert [r.status for r in harness.sent] == [429] * MAX_ATTEMPTS
    assert harness.waits == [1.0] * (MAX_ATTEMPTS - 1)


def test_dropped_connection_is_retried(harness):
    """A dropped connection is Unreachable, which is retried."""
    harness.box.fail("POST", PATH, status=None, drop=True, times=1)
    links = harness.create()
    assert len(links.all) == 2
    assert [r.status for r in harness.sent] == [0, 200]
    assert harness.waits == [backoff(1)]


def test_connection_that_keeps_dropping_is_unreachable(harness):
    """Connections that always drop end in Unreachable after max_attempts, with no status."""
    harness.box.fail("POST", PATH, status=None, drop=True)
    with pytest.raises(Unreachable) as caught:
        harness.create()
    assert caught.value.status is None and caught.value.tracking_id is None
    assert [r.status for r in harness.sent] == [0] * MAX_ATTEMPTS
    assert harness.waits == [backoff(1), backoff(2)]


def test_nobody_listening_is_unreachable():
    """A broker address where nothing listens is Unreachable."""
    with Sandbox(seed=3) as box:
        harness = Harness(box)
    with pytest.raises(Unreachable):
        harness.create()
    assert len(harness.waits) == MAX_ATTEMPTS - 1


def test_slow_broker_times_out_without_retry(sandbox):
    """A broker slower than read_timeout raises Timeout, and the call is not retried."""
    harness = Harness(sandbox, read_timeout=0.3)
    sandbox.fail("POST", PATH, status=None, latency=1.0)
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        harness.create()
    assert time.monotonic() - started < 1.0  # did not wait for the late answer
    assert caught.value.status is None
    assert harness.waits == []
    sandbox.wait_for(lambda: harness.sent, timeout=3.0)
    assert len(harness.sent) == 1


@pytest.mark.parametrize(
    ("body", "params", "why"),
    [
        pytest.param({"host": [{"cipher": "eyA"}], "guest": []}, {"num_guest": 1},
                     "expected 1 guest", id="fewer-links"),
        pytest.param({"host": [{"cipher": "eyA"}], "guest": [{"cipher": "eyB"}]},
                     {"num_guest": 2}, "expected 2 guest", id="fewer-guests"),
        pytest.param({"host": [{"short": "abc"}], "guest": [{"cipher": "eyB"}]}, {},
                     "host 1 has no cipher", id="missing-cipher"),
        pytest.param({"host": [{"cipher": ""}], "guest": [{"cipher": "eyB"}]}, {},
                     "host 1 has no cipher", id="empty-cipher"),
        pytest.param({"host": [{"cipher": "eyA", "short": "a"}],
                      "guest": [{"cipher": "eyB", "short": "b"}]},
                     {"provide_short_urls": True}, "no baseUrl", id="missing-base-url"),
        pytest.param({"host": [{"cipher": "eyA", "short": "a"}], "guest": [{"cipher": "eyB"}],
                      "baseUrl": VISIT},
                     {"provide_short_urls": True}, "guest 1 has no short", id="missing-short"),
        pytest.param("<html>all good</html>", {}, "not JSON", id="not-json"),
        pytest.param(["host", "guest"], {}, "not a JSON object", id="not-an-object"),
    ],
)
def test_malformed_answers(harness, body, params, why):
    """A 200 whose body is not what the guide documents is MalformedResponse, not retried."""
    harness.box.fail("POST", PATH, status=200, body=body)
    raised = harness.fails(MalformedResponse, **params)
    assert why in raised.detail
    assert raised.status == 200
    assert len(harness.sent) == 1 and harness.waits == []


def secret_free(text: str, secrets: list[str]) -> bool:
    return not any(secret in text for secret in secrets)


def test_token_and_ciphers_stay_out_of_errors_reprs_and_logs(sandbox, caplog):
    """Neither the token nor a cipher shows in errors, the client's repr or any log record."""
    caplog.set_level(logging.DEBUG)
    harness = Harness(sandbox)
    token = sandbox.bot_token
    sandbox.fail("POST", PATH, status=503, times=1)
    links = harness.create(num_host=2, num_guest=2, provide_short_urls=True)
    sandbox.fail("POST", PATH, status=401)
    error = harness.fails(NotAuthorized)
    sandbox.clear_faults()
    sandbox.fail("POST", PATH, status=503)
    unavailable = harness.fails(Unavailable)

    ciphers = [cipher_of(link.url) for link in links.all]
    secrets = [token, *ciphers]
    assert ciphers and all(len(cipher) > 100 for cipher in ciphers)
    for shown in (str(error), repr(error), str(unavailable), repr(unavailable),
                  repr(error.args), str(harness.client), repr(harness.client), repr(links),
                  repr(links.all)):
        assert secret_free(shown, secrets), shown
    assert any(record.name.startswith("bot.") for record in caplog.records)
    assert any(getattr(record, "tracking_id", None) for record in caplog.records)
    for record in caplog.records:
        assert secret_free(record.getMessage(), secrets)
        for name, value in vars(record).items():
            assert secret_free(repr(value), secrets), (record.name, name)


@pytest.mark.parametrize(
    ("threads", "options"),
    [pytest.param(12, {"pool_size": 12}, id="pool_size-12"),
     pytest.param(32, {}, id="default-for-32-worker-threads")],
)
def test_threads_sharing_the_client_reuse_their_connections(sandbox, caplog, threads, options):
    """No "Connection pool is full" from urllib3, and no more connections than threads calling."""
    caplog.set_level(logging.DEBUG, logger="urllib3")
    sandbox.fail("POST", PATH, status=None, latency=0.1)  # every thread's call in flight at once
    client = InstantConnectClient(
        Secret(sandbox.bot_token),
        InstantConnectConfig(broker_url=sandbox.broker_url, read_timeout=5.0),
        **options,
    )
    request = MeetingRequest(sub="Pool", num_host=1, num_guest=0, iterations=1000)
    all_at_once(threads, 2, lambda: client.create_links(request))
    assert len(sandbox.requests_matching("POST", PATH)) == threads * 2
    opened, discarded = pool_log(caplog)
    assert discarded == []
    assert 0 < len(opened) <= threads


def test_a_session_passed_in_is_used_as_it_is(sandbox):
    """pool_size sizes only the session the client makes; the caller's own is left alone."""
    session = requests.Session()
    adapters = dict(session.adapters)
    InstantConnectClient(Secret(sandbox.bot_token), InstantConnectConfig(), session=session,
                         pool_size=50)
    assert session.adapters == adapters


def test_pool_size_must_be_positive():
    with pytest.raises(ValueError, match="pool_size"):
        InstantConnectClient(Secret("t"), InstantConnectConfig(), pool_size=0)
