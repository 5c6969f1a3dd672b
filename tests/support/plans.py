"""The plan checks as one value: the plan (or the inputs), or the problems they raised."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.conversation.plan import MeetingPlan, PlanContext, inputs_from_options, plan_from_inputs
from bot.errors import FieldError, InvalidRequest
from cards.inputs import CatalogDevice


def plan_or_problems(
    inputs: Mapping[str, object], context: PlanContext
) -> MeetingPlan | list[FieldError]:
    """``plan_from_inputs``, with the problems it raised returned instead."""
    try:
        return plan_from_inputs(inputs, context)
    except InvalidRequest as error:
        return error.errors


def inputs_or_problems(
    subject: str, options: Mapping[str, str], catalog: Sequence[CatalogDevice]
) -> dict[str, str] | list[FieldError]:
    """``inputs_from_options``, with the problems it raised returned instead."""
    try:
        return inputs_from_options(subject, options, catalog)
    except InvalidRequest as error:
        return error.errors
