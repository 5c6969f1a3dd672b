"""Sealing what a meeting keeps: what is sealed opens only unaltered, on its own record, under a
key of MEETING_KEYS; rotation keeps old values readable; no key is ever shown."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable

import pytest

from bot.cli import main
from bot.logs import JsonFormatter
from bot.meetings.sealing import Keyring, SealBroken, new_key
from bot.settings import Settings, SettingsError
from tests.support.keys import TEST_KEYRING

OLD, NEW, STRANGER = new_key(), new_key(), new_key()
RECORD = b"meetings/m-42"


def body_of(sealed: str) -> tuple[str, bytearray]:
    """A sealed value's key id and its bytes (nonce, ciphertext, tag)."""
    key_id, _, text = sealed.partition(".")
    return key_id, bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def rewritten(key_id: str, body: bytes) -> str:
    return f"{key_id}.{base64.urlsafe_b64encode(body).decode().rstrip('=')}"


@pytest.mark.parametrize("plain", [b"", b"zoe.b@example.org", "Zoë +33 6 12 34 56 78".encode(),
                                   secrets.token_bytes(5000)])
def test_what_is_sealed_opens_on_its_record(plain: bytes) -> None:
    keys = Keyring.parse(NEW)
    sealed = keys.seal(plain, RECORD)
    assert keys.open(sealed, RECORD) == plain
    assert sealed.startswith(keys.ids[0] + ".")
    assert sealed.isascii() and "," not in sealed  # a plain string for any store


def test_each_seal_has_a_nonce_of_its_own_and_shows_nothing_of_the_plain_text() -> None:
    plain = b"zoe.b@example.org"
    first, second = TEST_KEYRING.seal(plain, RECORD), TEST_KEYRING.seal(plain, RECORD)
    assert first != second
    assert body_of(first)[1][:12] != body_of(second)[1][:12]
    assert b"zoe" not in body_of(first)[1] and "zoe" not in first


def test_a_flipped_byte_anywhere_is_refused() -> None:
    """Nonce, ciphertext or tag: a single bit changed and the value does not open."""
    sealed = TEST_KEYRING.seal(b"https://instant.webex.com/hc/v1/talk?data=eyJ", RECORD)
    key_id, body = body_of(sealed)
    for position in range(len(body)):
        altered = bytearray(body)
        altered[position] ^= 0x01
        with pytest.raises(SealBroken, match="altered, or it belongs to another record"):
            TEST_KEYRING.open(rewritten(key_id, altered), RECORD)


def test_a_value_moved_to_another_record_does_not_open() -> None:
    sealed = TEST_KEYRING.seal(b"+33612345678", RECORD)
    for elsewhere in (b"meetings/m-43", b"meetings/m-4", RECORD + b"\0", b"audit/m-42"):
        with pytest.raises(SealBroken, match="belongs to another record"):
            TEST_KEYRING.open(sealed, elsewhere)


def with_an_unused_bit_set(text: str) -> str:
    """The same bytes spelled another way: the last character's bits past the data set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(text) % 4 in (2, 3), "no unused bits to set"
    return text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]


DAMAGES = {
    "no key id": lambda s: s.replace(".", ""),
    "shorter than a nonce and a tag": lambda s: s[:30],
    "an unused bit set": with_an_unused_bit_set,
    "a stray character": lambda s: s + "*",
    "standard base64": lambda s: s + "+/",
    "a key id of the wrong length": lambda s: "x" + s,
    "empty": lambda s: "",
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_value_is_said_to_be_damaged(damage: Callable[[str], str]) -> None:
    sealed = TEST_KEYRING.seal(b"zoe@example.org", RECORD)  # 43 bytes: 58 characters
    with pytest.raises(SealBroken, match=r"^not a sealed value: damaged, or never sealed$"):
        TEST_KEYRING.open(damage(sealed), RECORD)


def test_rotation_the_new_key_seals_and_the_old_one_still_opens() -> None:
    before = Keyring.parse(OLD)
    kept = before.seal(b"zoe.b@example.org", RECORD)
    rotated = Keyring.parse(f"{NEW}, {OLD}")
    assert rotated.ids == (Keyring.parse(NEW).ids[0], before.ids[0])
    assert rotated.open(kept, RECORD) == b"zoe.b@example.org"
    fresh = rotated.seal(b"+33612345678", RECORD)
    assert fresh.partition(".")[0] == Keyring.parse(NEW).ids[0] != before.ids[0]
    assert Keyring.parse(NEW).open(fresh, RECORD) == b"+33612345678"
    with pytest.raises(SealBroken):  # the old key alone cannot read what the new one sealed
        before.open(fresh, RECORD)


def test_a_value_sealed_with_a_key_no_longer_given_is_named_by_its_id_never_a_key() -> None:
    sealed = Keyring.parse(STRANGER).seal(b"zoe.b@example.org", RECORD)
    keys = Keyring.parse(f"{NEW},{OLD}")
    with pytest.raises(SealBroken) as raised:
        keys.open(sealed, RECORD)
    message = str(raised.value)
    stranger_id = Keyring.parse(STRANGER).ids[0]
    assert message == (f"sealed with key {stranger_id}, which is not among the meeting keys "
                       "(MEETING_KEYS): put that key back after the first to open it")
    assert not any(key in message for key in (STRANGER, NEW, OLD))


def test_a_value_given_another_keys_id_does_not_open() -> None:
    """The key id is bound too: relabelled for the other key of the ring, it is refused."""
    keys = Keyring.parse(f"{NEW},{OLD}")
    key_id, body = body_of(keys.seal(b"zoe.b@example.org", RECORD))
    assert key_id == keys.ids[0]
    with pytest.raises(SealBroken, match=f"sealed with key {keys.ids[1]} does not open"):
        keys.open(rewritten(keys.ids[1], body), RECORD)


def test_a_seal_needs_its_record() -> None:
    with pytest.raises(ValueError, match="bound to its record"):
        TEST_KEYRING.seal(b"zoe.b@example.org", b"")


BAD_KEYS = {
    "too short": NEW[:-1],
    "too long": NEW + "A",
    "standard base64": base64.b64encode(bytes([251] * 32)).decode(),
    "16 bytes": secrets.token_urlsafe(16),
    "a passphrase": "correct horse battery staple, make it long!",
    "an unused bit set": with_an_unused_bit_set(NEW),
    "hex": secrets.token_hex(32),
}


@pytest.mark.parametrize("text", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_what_is_not_a_key_is_refused_without_being_shown(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        Keyring.parse(f"{OLD},{text}")
    message = str(raised.value)
    assert "'python -m bot new-key'" in message
    assert text not in message and OLD not in message


@pytest.mark.parametrize("text", [",", " , ,\n"])
def test_commas_alone_are_no_key(text: str) -> None:
    with pytest.raises(ValueError, match=r"^no key given: each is 43 characters"):
        Keyring.parse(text)


def test_a_key_given_twice_is_a_mistake_named_by_its_place() -> None:
    with pytest.raises(ValueError, match=r"^key 3 of 3 is given twice$"):
        Keyring.parse(f"{NEW},{OLD},{NEW}")


def test_spaces_padding_and_a_trailing_comma_are_forgiven() -> None:
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(NEW + "=")).decode()
    assert padded == NEW + "="
    assert Keyring.parse(f"  {padded} ,\n{OLD},") == Keyring.parse(f"{NEW},{OLD}")


def test_a_keyring_shows_its_ids_never_its_keys() -> None:
    keys = Keyring.parse(f"{NEW},{OLD}")
    assert repr(keys) == f"Keyring({keys.ids[0]}, {keys.ids[1]})"
    assert NEW not in repr(keys) and OLD not in repr(keys)
    assert keys.secret_values() == [NEW, OLD]


# The setting --------------------------------------------------------------------------------


def test_meeting_keys_is_read_and_masked_in_the_logs() -> None:
    settings = Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "MEETING_KEYS": f"{NEW}, {OLD}"})
    assert settings.meeting_keys == Keyring.parse(f"{NEW},{OLD}")
    assert settings.require_meeting_keys() is settings.meeting_keys
    assert NEW not in repr(settings) and OLD not in repr(settings)
    record = logging.LogRecord("bot.test", logging.ERROR, __file__, 1, f"oops {OLD}", (), None)
    line = JsonFormatter(settings.secret_values()).format(record)
    assert OLD not in line and "oops ***" in line


def test_a_malformed_meeting_keys_is_one_line_naming_it() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "MEETING_KEYS": f"{NEW},{OLD[:30]}"})
    message = str(raised.value)
    assert message == ("MEETING_KEYS: key 2 of 2 is not a key: each is 43 characters of url-safe "
                       "base64, as 'python -m bot new-key' prints.")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_without_meeting_keys_the_bot_refuses_to_run_and_says_how_to_make_one(
    value: str | None,
) -> None:
    environment = {"WEBEX_BOT_TOKEN": "tok"} | ({"MEETING_KEYS": value} if value is not None
                                                 else {})
    settings = Settings.from_env(environment)  # other commands (links, abandoned) need none
    assert settings.meeting_keys is None
    with pytest.raises(SettingsError) as raised:
        settings.require_meeting_keys()
    message = str(raised.value)
    assert message.startswith("MEETING_KEYS is not set: it encrypts the guests' contacts and "
                              "the links") and "\n" not in message
    assert message.endswith("Make one with 'python -m bot new-key'.")


# python -m bot new-key ----------------------------------------------------------------------


def test_new_key_prints_one_key_that_parses_and_says_how_to_rotate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["new-key"]) == 0
    first = capsys.readouterr()
    assert main(["new-key"]) == 0
    second = capsys.readouterr()
    [key] = first.out.splitlines()
    assert Keyring.parse(key).secret_values() == [key] and len(key) == 43
    assert second.out.strip() != key
    [hint] = first.err.splitlines()
    assert "new key first in MEETING_KEYS" in hint and "old ones after it" in hint
    assert key not in first.err
