"""Retry-After in all its forms, and the bounded retry loop."""

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from bot.errors import NotAuthorized, RateLimited, Rejected, Unavailable, Unreachable
from bot.retry import RetryPolicy, parse_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), (" 12 ", 12.0), ("0", 0.0), ("-4", 0.0), (None, None),
     ("soon", None), ("", None), ("nan", None), ("inf", None)],
)
def test_retry_after_forms(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_http_date():
    when = format_datetime(datetime.fromtimestamp(NOW + 7, UTC), usegmt=True)
    assert parse_retry_after(when, NOW) == pytest.approx(7)
    past = format_datetime(datetime.fromtimestamp(NOW - 7, UTC), usegmt=True)
    assert parse_retry_after(past, NOW) == 0.0


def failing(errors):
    calls = []

    def send():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return send, calls


def test_retries_until_success_with_retry_after_then_backoff():
    waits = []
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_wait=10, sleep=waits.append)
    send, calls = failing([RateLimited("X", status=429, retry_after=3),
                           Unavailable("X", status=503)])
    assert policy.call(send) == "ok"
    assert len(calls) == 3
    assert waits == [3, 1.0]


def test_waits_are_capped_and_attempts_bounded():
    waits = []
    policy = RetryPolicy(max_attempts=3, max_wait=5, sleep=waits.append)
    send, calls = failing([RateLimited("X", status=429, retry_after=3600)] * 5)
    with pytest.raises(RateLimited):
        policy.call(send)
    assert len(calls) == 3
    assert waits == [5, 5]


@pytest.mark.parametrize(
    "error",
    [Rejected("X", status=400), Rejected("X", status=404), NotAuthorized("X", status=401),
     Unavailable("X", status=500)],
)
def test_other_failures_are_not_retried(error):
    waits = []
    send, calls = failing([error])
    with pytest.raises(type(error)):
        RetryPolicy(sleep=waits.append).call(send)
    assert len(calls) == 1 and waits == []


def test_connection_failures_are_retried():
    send, calls = failing([Unreachable("X")])
    assert RetryPolicy(sleep=lambda _: None).call(send) == "ok"
    assert len(calls) == 2
