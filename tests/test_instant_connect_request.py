"""The request model: what is sent, and every impossible value refused with a named field."""

import pytest

from bot.errors import InvalidRequest
from bot.upstream.instant_connect import MeetingRequest, is_sip_uri, unique_sub

NOW = 1_800_000_000
PERSIAN = "می" "\u200c" "خواهم"  # "I want", with the ZERO WIDTH NON-JOINER Persian needs


def fields(request: MeetingRequest) -> list[str]:
    return [error.field for error in request.problems(NOW)]


def test_minimal_body_leaves_broker_defaults_alone():
    body = MeetingRequest(sub="Consult-1").to_body()
    assert body == {"jwt": {"sub": "Consult-1"}, "aud": "a4d886b0-979f-4e2c-a958-3e8c14605e51"}


def test_every_parameter_reaches_the_body():
    request = MeetingRequest(
        sub="s", nbf=NOW, exp=NOW + 60, devices=("a@b.example.com",), num_host=2, num_guest=3,
        provide_short_urls=True, vertical_type="hc", login_url_for_host=False,
        jwe_alg="PBES2-HS256+A128KW", salt_length=16, iterations=2000, enc="A128GCM",
        jws_alg="HS256", aud="other-aud",
    )
    assert request.to_body() == {
        "jwt": {"sub": "s", "nbf": NOW, "exp": NOW + 60,
                "flow": {"id": "sip-no-knock", "data": [{"uri": "a@b.example.com"}]}},
        "aud": "other-aud", "numHost": 2, "numGuest": 3, "provideShortUrls": True,
        "verticalType": "hc", "loginUrlForHost": False, "jweAlg": "PBES2-HS256+A128KW",
        "saltLength": 16, "iterations": 2000, "enc": "A128GCM", "jwsAlg": "HS256",
    }
    assert request.problems(NOW) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_host": 26}, "numHost"),
        ({"num_guest": -1}, "numGuest"),
        ({"num_host": 20, "num_guest": 6}, "numHost"),
        ({"num_host": 0, "num_guest": 0}, "numHost"),
        ({"num_host": True}, "numHost"),
        ({"nbf": NOW + 100, "exp": NOW + 50}, "jwt.exp"),
        ({"exp": NOW - 1}, "jwt.exp"),
        ({"exp": (NOW + 60) * 1000}, "jwt.exp"),
        ({"nbf": NOW * 1000, "exp": NOW + 60}, "jwt.nbf"),
        ({"nbf": NOW + 3600}, "jwt.nbf"),
        ({"exp": 1.5}, "jwt.exp"),
        ({"sub": ""}, "jwt.sub"),
        ({"sub": "x" * 129}, "jwt.sub"),
        ({"sub": "bad\nsub"}, "jwt.sub"),
        ({"sub": "bad\u202esub"}, "jwt.sub"),
        ({"sub": "bad\u2028sub"}, "jwt.sub"),
        ({"sub": "bad\ue000sub"}, "jwt.sub"),
        ({"sub": "bad\ud800sub"}, "jwt.sub"),
        ({"sub": "\u200dbad"}, "jwt.sub"),
        ({"devices": ("not a sip uri",)}, "jwt.flow"),
        ({"devices": ("@example.com",)}, "jwt.flow"),
        ({"devices": tuple(f"r{i}@example.com" for i in range(26))}, "jwt.flow"),
        ({"vertical_type": "edu"}, "verticalType"),
        ({"jwe_alg": "RSA-OAEP"}, "jweAlg"),
        ({"enc": "A512GCM"}, "enc"),
        ({"jws_alg": "RS256"}, "jwsAlg"),
        ({"salt_length": 7}, "saltLength"),
        ({"salt_length": 129}, "saltLength"),
        ({"iterations": 999}, "iterations"),
        ({"iterations": 32768}, "iterations"),
        ({"provide_short_urls": "true"}, "provideShortUrls"),
        ({"aud": " "}, "aud"),
    ],
)
def test_impossible_values_are_named(changes, field):
    request = MeetingRequest(**{"sub": "Consult", **changes})
    assert field in fields(request)
    with pytest.raises(InvalidRequest) as raised:
        request.check(NOW)
    assert field in str(raised.value)


def test_boundaries_are_accepted():
    request = MeetingRequest(sub="x" * 128, num_host=25, num_guest=0, salt_length=128,
                             iterations=32767, exp=NOW + 1)
    assert request.problems(NOW) == []
    assert MeetingRequest(sub="s", num_host=0, num_guest=25, salt_length=8,
                          iterations=1000).problems(NOW) == []


def test_sip_uris():
    assert is_sip_uri("instant_rounding@intadmin.room.wbx2.com")
    assert is_sip_uri("sip:room-1@example.com")
    assert not is_sip_uri("room1")
    assert not is_sip_uri("room@localhost")
    assert not is_sip_uri("a b@example.com")


def test_same_subject_different_keys_never_share_a_space():
    assert unique_sub("Consultation", "action-1") != unique_sub("Consultation", "action-2")
    assert unique_sub("Consultation") != unique_sub("Consultation")


def test_sub_is_deterministic_per_key_and_reads_like_the_subject():
    sub = unique_sub("Patient follow-up: Mrs Müller", "action-1")
    assert sub == unique_sub("Patient follow-up: Mrs Müller", "action-1")
    assert sub.startswith("Patient-follow-up-Mrs-Muller-")
    assert MeetingRequest(sub=unique_sub("x" * 500, "k")).problems(NOW) == []
    assert unique_sub("😀 ", "k").startswith("meeting-")


@pytest.mark.parametrize("sub", ["👩\u200d⚕️-Visit", "👨\u200d👩\u200d👧", PERSIAN,
                                 "क्\u200dष", "\u200fמרפאה"])
def test_a_sub_may_hold_what_people_type(sub):
    """Joiners and direction marks are text, not control characters: the sub keeps them."""
    assert MeetingRequest(sub=sub).problems(NOW) == []


def test_a_refused_sub_names_the_character_and_where_it_is():
    [error] = MeetingRequest(sub="Consult-\u202eevil").problems(NOW)
    assert error.field == "jwt.sub"
    assert "RIGHT-TO-LEFT OVERRIDE (U+202E) after 'Consult-'" in error.message


@pytest.mark.parametrize(
    ("subject", "slug"),
    [("👩\u200d⚕️ Visit", "Visit-"), ("Ward 👨\u200d👩\u200d👧", "Ward-"),
     (PERSIAN, "meeting-"), ("Café\u200d", "Cafe-")],
)
def test_unique_sub_folds_joined_text_to_a_sub_the_broker_accepts(subject, slug):
    """The slug keeps ASCII letters and digits only, so joiners never reach the broker."""
    sub = unique_sub(subject, "k")
    assert sub.startswith(slug) and sub.isascii()
    assert MeetingRequest(sub=sub).problems(NOW) == []
