"""Where guests' links go outside Webex: the contacts people type, each read by a guest channel
(``channels.py``): email addresses and mobile numbers so far.

Addresses are checked by ``email-validator`` (syntax only: the bot asks no DNS), numbers by
``phonenumbers`` (a number typed without ``+`` is read in the configured default region). A
contact is personal data: it is shown whole only to the person who typed it, masked anywhere
else (a group space, a log line never carries one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.meetings.record import Contact

MASK = "•"


@dataclass(frozen=True)
class BadContact:
    """An entry that is no address: what was typed (to name it) and why."""

    typed: str
    reason: str


def _entries(text: str) -> list[str]:
    """Entries separated by commas, semicolons or new lines (spaces stay: "+33 6 12 ...")."""
    return [entry.strip() for entry in re.split(r"[,;\n]+", text) if entry.strip()]


def parse_contacts(
    text: str, read: Callable[[str], Contact | BadContact]
) -> tuple[list[Contact], list[BadContact]]:
    """Every contact typed, in order and without repeats, and every entry that is none."""
    contacts: list[Contact] = []
    bad: list[BadContact] = []
    seen: set[str] = set()
    for entry in _entries(text):
        contact = read(entry)
        if isinstance(contact, BadContact):
            bad.append(contact)
        elif contact.address.casefold() not in seen:  # Zoe@ and zoe@ reach the same person
            seen.add(contact.address.casefold())
            contacts.append(contact)
    return contacts, bad


def email_contact(channel: str, entry: str) -> Contact | BadContact:
    """An email address, normalised, or why the entry is none."""
    try:
        checked = validate_email(entry, check_deliverability=False)
    except EmailNotValidError:
        return BadContact(entry, "is not an email address like name@example.org.")
    return Contact(channel, checked.normalized, mask_email(checked.normalized))


def phone_contact(channel: str, entry: str, default_region: str | None) -> Contact | BadContact:
    """A mobile number in E.164, or why the entry is none."""
    if not entry.startswith("+") and default_region is None:
        return BadContact(entry, "needs its country code, like +33 6 12 34 56 78.")
    try:
        number = phonenumbers.parse(entry, default_region)
    except phonenumbers.NumberParseException:
        return BadContact(entry, "is not a phone number.")
    if not phonenumbers.is_valid_number(number):
        return BadContact(entry, "is not a valid phone number.")
    kind = phonenumbers.number_type(number)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE,
                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return BadContact(entry, "is not a mobile number, so it cannot receive a text message.")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Contact(channel, e164, mask_phone(e164))


def mask_email(address: str) -> str:
    """The first character of the mailbox and the whole domain."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}{MASK * 3}@{domain}"


def mask_phone(number: str) -> str:
    """The number as written internationally, every digit hidden but the country code, the first
    digit after it and the last two."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return MASK * 6
    written = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    country = f"+{parsed.country_code}"
    rest = written[len(country):]
    digits = [i for i, char in enumerate(rest) if char.isdigit()]
    keep = set(digits[:1] + digits[-2:])
    return country + "".join(
        char if not char.isdigit() or i in keep else MASK for i, char in enumerate(rest))
