"""Sealing what a meeting keeps that is personal (guests' contacts) or a credential (links):
encrypted, tied to its record, under keys that can be rotated.

Usage::

    keys = Keyring.parse(text)          # MEETING_KEYS; ValueError naming no key
    sealed = keys.seal(b"zoe@example.org", b"meetings/m-42")
    keys.open(sealed, b"meetings/m-42") # b"zoe@example.org"
    keys.open(sealed, b"meetings/m-43") # SealBroken: moved to another record

A key is 32 random bytes written as 43 characters of url-safe base64 (what ``python -m bot
new-key`` prints); MEETING_KEYS lists them, comma-separated: the first seals, every one opens, so
a new key goes first and the old ones stay after it while records sealed with them remain. Each
key's id is derived from the key itself (an HMAC of a fixed label), so nothing is named by hand,
two keys cannot claim one id, and the id tells nothing of the key.

A sealed value is ``<key id>.<nonce, ciphertext and tag>`` in url-safe base64: AES-256-GCM with a
random 96-bit nonce per seal, the key id and the record's ``context`` as associated data, so a
value altered by one byte, or copied onto another record, does not open. Random nonces keep a
key safe for some four billion seals (NIST SP 800-38D), far beyond what a bot seals before its
key is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's 96-bit nonce
TAG_BYTES = 16
KEY_ID = re.compile(r"[A-Za-z0-9_-]{8}")  # 6 bytes of HMAC, in base64
KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")  # 32 bytes, with or without the one "="
BASE64 = re.compile(r"[A-Za-z0-9_-]*")
_ID_LABEL = b"instant-connect-bot meeting key id"
KEY_FORMAT = "43 characters of url-safe base64, as 'python -m bot new-key' prints"


class SealBroken(Exception):
    """A sealed value no key opens: altered, moved to another record, damaged, or sealed with a
    key the keyring no longer has. The message names the key id at most, never a key."""


def new_key() -> str:
    """A fresh random key, written as MEETING_KEYS takes it."""
    return secrets.token_urlsafe(KEY_BYTES)


@dataclass(frozen=True, eq=False)
class _Key:
    id: str
    written: str  # as given, so the logs can mask it
    aead: AESGCM

    def __repr__(self) -> str:
        return f"key {self.id}"


class Keyring:
    """The meeting keys: the first seals, every one opens."""

    def __init__(self, keys: Sequence[_Key]) -> None:
        if not keys:
            raise ValueError("a keyring needs a key")
        self._keys = tuple(keys)
        self._by_id = {key.id: key for key in self._keys}

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Keys separated by commas, the sealing one first; ValueError saying which one is
        wrong (by its place, never its text)."""
        written = [item.strip() for item in text.split(",") if item.strip()]
        if not written:
            raise ValueError(f"no key given: each is {KEY_FORMAT}")
        keys: list[_Key] = []
        for number, item in enumerate(written, 1):
            key = _read_key(item)
            if key is None:
                raise ValueError(f"key {number} of {len(written)} is not a key: each is "
                                 f"{KEY_FORMAT}")
            if key.id in {known.id for known in keys}:
                raise ValueError(f"key {number} of {len(written)} is given twice")
            keys.append(key)
        return cls(keys)

    @property
    def ids(self) -> tuple[str, ...]:
        """Each key's id, the sealing key's first."""
        return tuple(key.id for key in self._keys)

    def secret_values(self) -> list[str]:
        """The keys as written, so the logs can mask them."""
        return [key.written for key in self._keys]

    def seal(self, plain: bytes, context: bytes) -> str:
        """``plain`` encrypted with the first key, bound to ``context`` (what names the record
        it is kept in: the same context opens it, no other)."""
        key = self._keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = key.aead.encrypt(nonce, plain, _associated(key.id, context))
        return f"{key.id}.{_text(nonce + body)}"

    def open(self, sealed: str, context: bytes) -> bytes:
        """What :meth:`seal` was given, if ``sealed`` comes from it, unaltered, for this
        ``context``, under a key of this keyring; else SealBroken."""
        key_id, _, text = sealed.partition(".")
        body = _bytes(text)
        if not KEY_ID.fullmatch(key_id) or body is None or \
                len(body) < NONCE_BYTES + TAG_BYTES:
            raise SealBroken("not a sealed value: damaged, or never sealed")
        key = self._by_id.get(key_id)
        if key is None:
            raise SealBroken(f"sealed with key {key_id}, which is not among the meeting keys "
                             "(MEETING_KEYS): put that key back after the first to open it")
        try:
            return key.aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:],
                                    _associated(key_id, context))
        except InvalidTag:
            raise SealBroken(f"the value sealed with key {key_id} does not open: it was "
                             "altered, or it belongs to another record") from None

    def __repr__(self) -> str:
        return f"Keyring({', '.join(self.ids)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keyring) and other.ids == self.ids

    def __hash__(self) -> int:
        return hash(self.ids)


def _read_key(written: str) -> _Key | None:
    """A key from its text, or None unless it is exactly 32 bytes in url-safe base64."""
    raw = _bytes(written.rstrip("=")) if KEY_TEXT.fullmatch(written) else None
    if raw is None or len(raw) != KEY_BYTES:
        return None
    digest = hmac.new(raw, _ID_LABEL, hashlib.sha256).digest()
    return _Key(id=_text(digest[:6]), written=written, aead=AESGCM(raw))


def _associated(key_id: str, context: bytes) -> bytes:
    """What a sealed value is bound to: its key's id (fixed length) and its record."""
    if not context:
        raise ValueError("a sealed value is bound to its record: give the record's context")
    return key_id.encode("ascii") + context


def _text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _bytes(text: str) -> bytes | None:
    """Url-safe base64 without padding, strictly: None for a stray character or unused bits
    set, so that one value is written one way only."""
    if not BASE64.fullmatch(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _text(data) == text else None
