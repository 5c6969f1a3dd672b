"""One rule for text people type that others will read, asked by every place that takes it."""

from __future__ import annotations

import time

import pytest

from bot.conversation.plan import PlanContext, plan_from_inputs
from bot.errors import InvalidRequest
from bot.text_safety import disguise_problem
from bot.upstream.instant_connect import MeetingRequest
from cards import inputs as ids
from tests.test_instant_connect_request import PERSIAN
from tests.test_plan import CATALOG, NOW, PARIS

HIDDEN = "Ward\u202eround"  # a right-to-left override: the rest reads backwards


def test_the_rule_names_what_to_remove_and_passes_what_people_type() -> None:
    assert disguise_problem("Ward round 🧑‍⚕️ " + PERSIAN) is None
    assert disguise_problem(HIDDEN) == (
        "Remove RIGHT-TO-LEFT OVERRIDE (U+202E) after 'Ward': such characters can hide or "
        "reorder text.")


@pytest.mark.parametrize("field", [ids.SUBJECT, ids.GUEST_NOTE])
def test_the_form_says_what_the_rule_says(field: str) -> None:
    inputs = {ids.SUBJECT: "Consultation", field: HIDDEN}
    with pytest.raises(InvalidRequest) as raised:
        plan_from_inputs(inputs, PlanContext(CATALOG, PARIS, NOW, group_space=False))
    [error] = raised.value.errors
    assert error.message == disguise_problem(HIDDEN)


def test_the_broker_request_says_what_the_rule_says() -> None:
    [error] = MeetingRequest(sub=HIDDEN).problems(time.time())
    assert (error.field, error.message) == ("jwt.sub", disguise_problem(HIDDEN))
