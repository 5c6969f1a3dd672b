"""Each default is written once: constructors take what the settings give them, and a value two
owners share lives in ``bot.limits``, so changing it never leaves a stale twin behind."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOBS = ("timeout", "threads", "lease_seconds", "attempts")


def literal_defaults() -> dict[tuple[str, float], list[str]]:
    """Where each literal number is the default of a constructor parameter or a field named like
    one of the knobs the settings set, by (knob, value)."""
    found: dict[tuple[str, float], list[str]] = defaultdict(list)
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if "devtools" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            pairs: list[tuple[str, ast.expr]] = []
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                args = node.args
                positional = args.posonlyargs + args.args
                pairs += zip([arg.arg for arg in positional[len(positional) - len(args.defaults):]],
                             args.defaults, strict=True)
                pairs += [(arg.arg, value) for arg, value in zip(args.kwonlyargs,
                                                                 args.kw_defaults, strict=True)
                          if value is not None]
            elif isinstance(node, ast.ClassDef):
                pairs += [(item.target.id, item.value) for item in node.body
                          if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                          and item.value is not None]
            for name, value in pairs:
                knob = next((knob for knob in KNOBS if name.endswith(knob)), None)
                if knob and isinstance(value, ast.Constant) \
                        and isinstance(value.value, int | float) \
                        and not isinstance(value.value, bool):
                    where = f"{path.relative_to(ROOT)}:{value.lineno} {name}"
                    found[(knob, float(value.value))].append(where)
    return found


def test_no_default_is_written_twice() -> None:
    twins = {key: places for key, places in literal_defaults().items() if len(places) > 1}
    assert twins == {}


def test_reading_the_settings_does_not_load_the_conversation_s_router() -> None:
    code = "import sys, bot.settings; print('bot.conversation.router' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True).stdout.strip()
    assert loaded == "False"
