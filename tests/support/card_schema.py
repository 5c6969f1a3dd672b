"""Checks card content against the official Adaptive Cards 1.3 schema and what Webex renders.

The schema alone accepts any version string and elements Webex cannot show (Media), so both are
checked here too. Errors come back as one readable list instead of the schema's nested `anyOf`s.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).parent / "schemas" / "adaptive-card-1.3.json"
WEBEX_VERSION = "1.3"

# Types the Webex renderer implements (webex-api-facts, section 4) and the parts they are made of.
WEBEX_TYPES = frozenset(
    {
        "AdaptiveCard",
        "TextBlock",
        "RichTextBlock",
        "TextRun",
        "Image",
        "ImageSet",
        "FactSet",
        "Fact",
        "Container",
        "ColumnSet",
        "Column",
        "ActionSet",
        "BackgroundImage",
        "Input.Text",
        "Input.Number",
        "Input.Date",
        "Input.Time",
        "Input.Toggle",
        "Input.ChoiceSet",
        "Input.Choice",
        "Action.Submit",
        "Action.OpenUrl",
        "Action.ShowCard",
        "Action.ToggleVisibility",
        "TargetElement",
    }
)

_VALIDATOR = Draft6Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate_card(content: dict) -> None:
    """Fail with every problem at once, so a broken card is fixed in one round."""
    problems = list(dict.fromkeys([*_schema_problems(content), *_webex_problems(content)]))
    if problems:
        raise AssertionError("Adaptive Card is not valid for Webex:\n  " + "\n  ".join(problems))


def _schema_problems(content: dict) -> Iterator[str]:
    """Explain each schema error at the element that caused it."""
    for error in sorted(_VALIDATOR.iter_errors(content), key=lambda e: list(map(str, e.path))):
        yield from _explain(error)


def _explain(error: ValidationError) -> Iterator[str]:
    """Descend into `anyOf` branches, keeping only those written for the element's own type."""
    if not error.context:
        yield f"{error.json_path}: {error.message}"
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    relevant = [errs for errs in branches.values() if not any(map(_other_type, errs))]
    if not relevant:
        kind = error.instance.get("type") if isinstance(error.instance, dict) else error.instance
        yield f"{error.json_path}: {kind!r} is not a type allowed here"
    for errs in relevant:
        for sub in errs:
            yield from _explain(sub)


def _other_type(error: ValidationError) -> bool:
    """Tell whether a branch failed only because it describes another element type."""
    return error.validator == "enum" and list(error.relative_path) == ["type"]


def _webex_problems(content: dict) -> Iterator[str]:
    """Find what the schema allows but Webex does not: other versions, unknown types, twin ids."""
    if content.get("type") != "AdaptiveCard":
        yield f"$.type: must be 'AdaptiveCard', not {content.get('type')!r}"
    if content.get("version") != WEBEX_VERSION:
        yield f"$.version: Webex renders version {WEBEX_VERSION!r}, not {content.get('version')!r}"
    seen_ids: set[str] = set()
    for path, node in _objects(content, "$"):
        kind = node.get("type")
        if isinstance(kind, str) and kind not in WEBEX_TYPES:
            yield f"{path}: Webex does not render {kind!r}"
        if isinstance(kind, str) and kind.startswith("Input.") and "id" in node:
            if node["id"] in seen_ids:
                yield f"{path}: input id {node['id']!r} is used twice, one value would be lost"
            seen_ids.add(node["id"])


def _objects(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    """Walk every object of the card, skipping Action.Submit data, which is free-form."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key != "data":
                yield from _objects(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}[{index}]")
