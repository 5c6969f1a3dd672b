"""The architecture, checked: imports point one way, no cycles, one module reads the environment.

Layers, lowest first; a module may import its own layer and those below, never above:

0. primitives: errors, events, limits, logs, the metrics' counting (``metrics/``), secret, the
   rule for text people type (``text_safety``), and the cards
1. ``upstream/``: the Webex and Instant Connect clients
2. ``jobs/``: the store, the job runner, the outbox; ``meetings/``: the meetings the bot
   remembers, sealed; and ``metrics.scrape``, which reads the store when scraped
3. ``conversation/``: what the bot says and does
4. how events come in: ``web/`` (the webhook intake, its envelope, the server's settings) and
   ``listen/`` (the websocket listener)
5. assembly: settings, service
6. entry points, where a process starts: the command line, the Flask app, wsgi, the gunicorn
   worker and logger classes and hooks

The dev tooling (``devtools/``) may import anything; nothing imports it but itself and the
command line that runs it (lazily, so ``serve`` never loads it). The sandbox imports nothing
else from the bot: it stands for Webex, not for us.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [
    ("bot", "bot.errors", "bot.events", "bot.limits", "bot.logs", "bot.metrics", "bot.secret",
     "bot.text_safety",
     "cards"),
    ("bot.upstream",),
    ("bot.jobs", "bot.meetings", "bot.metrics.scrape"),
    ("bot.conversation",),
    ("bot.web", "bot.listen"),
    ("bot.settings", "bot.service"),
    ("bot.cli", "bot.__main__", "bot.web.app", "bot.web.wsgi", "bot.web.gunicorn_worker",
     "bot.web.gunicorn_logging", "bot.web.gunicorn_hooks"),
]
DEVTOOLS = "bot.devtools"
SANDBOX = "bot.devtools.sandbox"
ENVIRONMENT_READER = "bot.settings"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in ("bot", "cards")
           for path in sorted((ROOT / package).rglob("*.py"))}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imported(module: str) -> set[str]:
    """The project's modules ``module`` imports anywhere in it (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom):  # relative: the sandbox's own modules
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imported(module) for module in MODULES}


def layer(module: str) -> int:
    """The layer of the most specific prefix naming the module."""
    best, rank = "", -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if within(module, prefix) and len(prefix) > len(best):
                best, rank = prefix, number
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def test_every_module_of_the_bot_is_in_a_layer_or_the_dev_tooling() -> None:
    for module in MODULES:
        if not within(module, DEVTOOLS):
            layer(module)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not within(m, DEVTOOLS)))
def test_imports_point_down(module: str) -> None:
    upward = sorted(target for target in GRAPH[module]
                    if not within(target, DEVTOOLS) and layer(target) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports a higher layer: {upward}"


def test_nothing_imports_the_dev_tooling_but_itself_and_the_command_line() -> None:
    importers = sorted(module for module, targets in GRAPH.items()
                       if not within(module, DEVTOOLS)
                       and any(within(target, DEVTOOLS) for target in targets))
    assert importers == ["bot.cli"]


def test_the_sandbox_imports_nothing_else_from_the_bot() -> None:
    leaks = {module: sorted(t for t in targets if not within(t, SANDBOX) and t != "bot")
             for module, targets in GRAPH.items() if within(module, SANDBOX)}
    assert {module: found for module, found in leaks.items() if found} == {}


def cycles() -> Iterator[list[str]]:
    """Every import cycle, each found once from its first module in a depth-first walk."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> Iterator[list[str]]:
        state[module], path[len(path):] = "open", [module]
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                yield [*path[path.index(target):], target]
            elif target not in state:
                yield from visit(target)
        state[module] = "done"
        path.pop()

    for module in sorted(GRAPH):
        if module not in state:
            yield from visit(module)


def test_no_import_cycles() -> None:
    assert list(cycles()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a cycle put into the graph is reported."""
    GRAPH["bot.errors"].add("bot.limits")
    GRAPH["bot.limits"].add("bot.errors")
    try:
        assert any({"bot.errors", "bot.limits"} <= set(cycle) for cycle in cycles())
    finally:
        GRAPH["bot.errors"].discard("bot.limits")
        GRAPH["bot.limits"].discard("bot.errors")


ENVIRONMENT = {"environ", "environb", "getenv"}


def reads_environment(module: str) -> bool:
    """``os.environ``, ``os.getenv`` or ``from os import environ`` anywhere in the module."""
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            return True
        if (isinstance(node, ast.ImportFrom) and node.module == "os"
                and {alias.name for alias in node.names} & ENVIRONMENT):
            return True
    return False


def test_only_the_settings_read_the_environment() -> None:
    readers = sorted(module for module in MODULES
                     if not within(module, DEVTOOLS) and reads_environment(module))
    assert readers == [ENVIRONMENT_READER]
