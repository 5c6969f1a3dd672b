"""Every store key is spelled once, by the module that owns it, as a `Fact` with its lifetime.

Two owners sharing a prefix would read each other's facts; a key spelled as a string at a call
would escape both this check and its owner's declaration of how long it lives.
"""

from __future__ import annotations

import ast

from bot.jobs.storage import Fact
from tests.test_layers import MODULES

FACT_CALLS = {"get", "set", "put_if_absent", "delete", "hit"}
ENGINES = "bot.jobs.storage"  # the engines' own keys live inside them, apart from the facts'


def declared_facts() -> dict[str, list[str]]:
    """Each prefix, and where a `Fact("prefix", ...)` declares it."""
    found: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id == "Fact" and value.args
                    and isinstance(value.args[0], ast.Constant)):
                found.setdefault(str(value.args[0].value), []).append(f"{name}:{node.lineno}")
    return found


def test_each_prefix_has_one_owner_and_none_hides_another() -> None:
    facts = declared_facts()
    assert {"form", "meeting", "rate", "rate-verdict", "sent", "sent-message",
            "listen:device", "listen:lease", "listen:heard-at"} <= set(facts)
    shared = {prefix: owners for prefix, owners in facts.items() if len(owners) > 1}
    assert not shared, f"prefixes declared twice: {shared}"
    hidden = [(a, b) for a in facts for b in facts if b.startswith(a + ":")]
    assert not hidden, f"a key of one kind can be a key of another: {hidden}"


def test_no_store_key_is_spelled_at_a_call() -> None:
    spelled = []
    for name, path in MODULES.items():
        if name.startswith((ENGINES, "bot.devtools")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in FACT_CALLS and node.args
                    and "store" in ast.unparse(node.func.value).lower()
                    and isinstance(node.args[0], ast.Constant | ast.JoinedStr)):
                spelled.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not spelled, "store keys spelled at a call, not declared as a Fact:\n" + "\n".join(
        spelled)


def test_a_key_joins_its_prefix_and_ids() -> None:
    assert Fact("sent", 60.0).key("event-1", "2") == "sent:event-1:2"
    assert Fact("listen:lease", None).key() == "listen:lease"
