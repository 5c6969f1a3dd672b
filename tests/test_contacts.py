"""Guests' contacts as people type them: addresses and mobile numbers checked, repeats dropped,
each bad one named, and every contact masked where it must not be shown whole."""

from __future__ import annotations

import pytest

from bot.conversation.channels import read_contact
from bot.conversation.contacts import BadContact, Contact, mask_email, mask_phone
from bot.conversation.contacts import parse_contacts as parse_with
from tests.support.guests import ready_channels

EMAIL = "email"
SMS = "sms"


def parse_contacts(text: str, region: str | None) -> tuple[list[Contact], list[BadContact]]:
    """As the plan reads them, with the bot's channels."""
    channels = ready_channels()
    return parse_with(text, lambda entry: read_contact(channels, entry, region))


def test_addresses_and_numbers_are_read_in_order_without_repeats() -> None:
    contacts, bad = parse_contacts(
        "zoe@example.org, +33 6 12 34 56 78\n06 12 34 56 79; Zoe@Example.org", "FR")
    assert [(c.channel, c.address) for c in contacts] == [
        (EMAIL, "zoe@example.org"), (SMS, "+33612345678"), (SMS, "+33612345679")]
    assert bad == []


@pytest.mark.parametrize(("typed", "reason"), [
    ("zoe@", "is not an email address"),
    ("zoe@localhost", "is not an email address"),
    ("12", "is not a valid phone number"),
    ("+33 1 42 68 53 00", "is not a mobile number"),  # a landline cannot take a text message
    ("call me", "is not a phone number"),
])
def test_each_bad_entry_is_named_with_why(typed: str, reason: str) -> None:
    contacts, bad = parse_contacts(f"zoe@example.org, {typed}", "FR")
    assert [(c.channel, c.address) for c in contacts] == [(EMAIL, "zoe@example.org")]
    assert [entry.typed for entry in bad] == [typed]
    assert bad[0].reason.startswith(reason)


def test_a_number_without_country_code_needs_a_default_region() -> None:
    assert parse_contacts("06 12 34 56 78", None)[1][0].reason.startswith("needs its country code")
    assert [c.address for c in parse_contacts("+33 6 12 34 56 78", None)[0]] == ["+33612345678"]
    assert [c.address for c in parse_contacts("(202) 555-0123", "US")[0]] == ["+12025550123"]


def test_masks_keep_enough_to_recognise_and_not_enough_to_use() -> None:
    assert mask_email("zoe@example.org") == "z•••@example.org"
    assert mask_phone("+33612345678") == "+33 6 •• •• •• 78"
    assert mask_phone("+12025550123") == "+1 2••-•••-••23"
    [mobile] = parse_contacts("+33 6 12 34 56 78", None)[0]
    assert mobile.shown(privately=True) == "+33612345678"
    assert mobile.shown(privately=False) == "+33 6 •• •• •• 78"
    [email] = parse_contacts("zoe@example.org", None)[0]
    assert email.shown(privately=False) == "z•••@example.org"
