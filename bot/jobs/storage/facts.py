"""The kinds of facts the bot keeps in the store, each declared once by the module that owns it.

A fact's key is its kind's prefix and the ids it is about (``form:<message id>``); its lifetime is
the kind's, or a setting's where the owner says so. Declaring each kind as a :class:`Fact` beside
its owner keeps every key spelled in one place and lets a test see that no two owners share a
prefix (``tests/test_store_keys.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One kind of fact: the prefix of its keys and how long each lives."""

    prefix: str
    lifetime: float | None
    """Seconds a written fact lives; None: until deleted or replaced, or for as long as the
    setting the owner names (a rate window, the websocket's lease)."""

    def key(self, *ids: str) -> str:
        """The key of the fact about ``ids`` (none: the one fact of this kind)."""
        return ":".join((self.prefix, *ids))
