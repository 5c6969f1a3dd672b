"""Retry-After in all its forms, and the bounded retry loop."""

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import NotAuthorized, RateLimited, Rejected, Unavailable, Unreachable
from bot.upstream.retry import RETRY_AFTER_SPREAD, RetryPolicy, parse_retry_after

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


@pytest.mark.parametrize(
    ("draw", "expected"),
    [pytest.param(0.0, [3, 0.5], id="lowest-draw"),
     pytest.param(0.5, [3.15, 0.75], id="middle-draw"),
     pytest.param(1.0, [3.3, 1.0], id="highest-draw")],
)
def test_retries_until_success_with_retry_after_then_backoff(draw, expected):
    """Retry-After 3 waits 3 s and up to 10% more; the 2nd backoff (1 s) waits 0.5 to 1 s."""
    waits = []
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_wait=10, sleep=waits.append,
                         jitter=lambda: draw)
    send, calls = failing([RateLimited("X", status=429, retry_after=3),
                           Unavailable("X", status=503)])
    assert policy.call(send, service="webex") == "ok"
    assert len(calls) == 3
    assert waits == pytest.approx(expected)


def test_waits_are_capped_and_attempts_bounded():
    waits = []
    policy = RetryPolicy(max_attempts=3, max_wait=5, sleep=waits.append, jitter=lambda: 1.0)
    send, calls = failing([RateLimited("X", status=429, retry_after=3600)] * 5)
    with pytest.raises(RateLimited):
        policy.call(send, service="webex")
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
        RetryPolicy(sleep=waits.append).call(send, service="webex")
    assert len(calls) == 1 and waits == []


def test_connection_failures_are_retried():
    send, calls = failing([Unreachable("X")])
    assert RetryPolicy(sleep=lambda _: None).call(send, service="webex") == "ok"
    assert len(calls) == 2


@given(
    attempt=st.integers(1, 200),
    base_delay=st.floats(0.001, 10),
    max_wait=st.floats(0.001, 120),
    draw=st.floats(0, 1),
)
def test_backoff_is_equal_jitter_within_the_cap(attempt, base_delay, max_wait, draw):
    """No Retry-After: between half the capped exponential backoff and all of it."""
    policy = RetryPolicy(base_delay=base_delay, max_wait=max_wait, jitter=lambda: draw)
    full = min(base_delay * 2 ** min(attempt - 1, 64), max_wait)
    wait = policy.delay(attempt, None)
    assert full / 2 <= wait <= full <= max_wait
    assert wait == pytest.approx(full / 2 * (1 + draw))


@given(
    attempt=st.integers(1, 10),
    retry_after=st.floats(0, 7200),
    max_wait=st.floats(0.001, 120),
    draw=st.floats(0, 1),
)
def test_retry_after_is_never_shortened_except_by_the_cap(attempt, retry_after, max_wait, draw):
    """Retry-After: at least what was asked, at most 10% more, and never above max_wait."""
    policy = RetryPolicy(max_wait=max_wait, jitter=lambda: draw)
    wait = policy.delay(attempt, retry_after)
    assert wait <= max_wait
    assert wait >= min(retry_after, max_wait)
    assert wait <= retry_after * (1 + RETRY_AFTER_SPREAD)


@pytest.mark.parametrize("draw", [-3.0, 7.5])
def test_a_jitter_source_out_of_range_is_clamped(draw):
    """A jitter source outside [0, 1] cannot make a wait shorter than asked or past the range."""
    policy = RetryPolicy(base_delay=1.0, max_wait=60, jitter=lambda: draw)
    assert 2.0 <= policy.delay(3, None) <= 4.0
    assert 10.0 <= policy.delay(1, 10.0) <= 10.0 * (1 + RETRY_AFTER_SPREAD)


def test_default_jitter_spreads_waits_that_would_be_the_same():
    """Threads failing at the same moment (same attempt, same Retry-After) wait differently."""
    policy = RetryPolicy(base_delay=0.5, max_wait=30)
    backoffs = [policy.delay(3, None) for _ in range(200)]
    told = [policy.delay(1, 2.0) for _ in range(200)]
    assert len(set(backoffs)) > 100 and len(set(told)) > 100
    assert all(1.0 <= wait <= 2.0 for wait in backoffs)
    assert all(2.0 <= wait <= 2.2 for wait in told)
    assert min(backoffs) < 1.5 < max(backoffs)  # both halves of the range are used


def test_jitter_source_is_injected_and_not_part_of_equality():
    """Like sleep, the random source is a test seam: policies compare on their numbers only."""
    seeded = random.Random(4)
    policy = RetryPolicy(jitter=seeded.random)
    assert policy == RetryPolicy()
    assert "jitter" not in repr(policy)
    again = RetryPolicy(jitter=random.Random(4).random)
    assert [policy.delay(n, None) for n in (1, 2, 3)] == [again.delay(n, None) for n in (1, 2, 3)]
