"""Guests' contacts as people type them: addresses and mobile numbers checked, repeats dropped,
each bad one named, and every contact masked where it must not be shown whole."""

from __future__ import annotations

import pytest

from bot.conversation.contacts import (
    EMAIL,
    SMS,
    Contact,
    mask_email,
    mask_phone,
    parse_contacts,
)


def test_addresses_and_numbers_are_read_in_order_without_repeats() -> None:
    contacts, bad = parse_contacts(
        "zoe@example.org, +33 6 12 34 56 78\n06 12 34 56 79; Zoe@Example.org", "FR")
    assert contacts == [Contact(EMAIL, "zoe@example.org"), Contact(SMS, "+33612345678"),
                        Contact(SMS, "+33612345679")]
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
    assert contacts == [Contact(EMAIL, "zoe@example.org")]
    assert [entry.typed for entry in bad] == [typed]
    assert bad[0].reason.startswith(reason)


def test_a_number_without_country_code_needs_a_default_region() -> None:
    assert parse_contacts("06 12 34 56 78", None)[1][0].reason.startswith("needs its country code")
    assert parse_contacts("+33 6 12 34 56 78", None)[0] == [Contact(SMS, "+33612345678")]
    assert parse_contacts("(202) 555-0123", "US")[0] == [Contact(SMS, "+12025550123")]


def test_masks_keep_enough_to_recognise_and_not_enough_to_use() -> None:
    assert mask_email("zoe@example.org") == "z•••@example.org"
    assert mask_phone("+33612345678") == "+33 6 •• •• •• 78"
    assert mask_phone("+12025550123") == "+1 2••-•••-••23"
    assert Contact(SMS, "+33612345678").shown(privately=True) == "+33612345678"
    assert Contact(SMS, "+33612345678").shown(privately=False) == "+33 6 •• •• •• 78"
