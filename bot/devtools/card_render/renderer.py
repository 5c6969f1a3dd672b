"""Drive `render.mjs`: Microsoft's `adaptivecards` renderer in Debian's headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
SCRIPT = PACKAGE_DIR / "render.mjs"
NODE_MODULES = PACKAGE_DIR / "node_modules"
NODE_PACKAGES = ("adaptivecards", "playwright-core")  # pinned in package.json
NODE_MAJOR = 18  # playwright-core 1.60 runs on Debian 12's Node.js 18
CHROMIUM_ENV = "CARD_RENDER_CHROMIUM"  # a Chromium binary other than the one on PATH
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CARD_WIDTH = 420  # px: about the Webex desktop message column
RENDER_TIMEOUT = 600  # seconds for one batch; a few dozen cards take seconds


class RendererUnavailable(RuntimeError):
    """Node, the node modules or Chromium are missing; the message says which and how to fix it."""


class RenderFailed(RuntimeError):
    """The renderer itself broke (not a finding about a card)."""


@dataclass(frozen=True)
class Rendered:
    """One card as Microsoft's renderer showed it, and what it found wrong."""

    name: str
    card: Path  # the card content as JSON
    png: Path
    warnings: tuple[str, ...]  # the renderer's parse, validation and render events
    overflow: tuple[str, ...]  # elements wider than the card, outside it, or cut off
    width: int  # px of the screenshot (the card plus a 12 px frame)
    height: int

    @property
    def ok(self) -> bool:
        return not (self.warnings or self.overflow)

    @property
    def problems(self) -> list[str]:
        return [
            *(f"warning: {w}" for w in self.warnings),
            *(f"overflow: {o}" for o in self.overflow),
        ]


def chromium() -> str | None:
    """The Chromium to drive: $CARD_RENDER_CHROMIUM, else the first on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_programs() -> str | None:
    """One line naming the program (node, chromium) that is absent and how to install it."""
    node = shutil.which("node")
    if node is None:
        return f"node is not installed: apt-get install nodejs (Node.js {NODE_MAJOR} or later)"
    version = _node_major(node)
    if version is not None and version < NODE_MAJOR:
        return f"node {version} is too old: the card renderer needs Node.js {NODE_MAJOR} or later"
    if chromium() is None:
        if os.environ.get(CHROMIUM_ENV):
            return f"{CHROMIUM_ENV}={os.environ[CHROMIUM_ENV]} is not an executable Chromium"
        return f"chromium is not installed: apt-get install chromium (or set {CHROMIUM_ENV})"
    return None


def missing() -> str | None:
    """One line naming what the renderer lacks and how to install it, or None when all is there."""
    absent = missing_programs()
    if absent:
        return absent
    for package in NODE_PACKAGES:
        if not (NODE_MODULES / package / "package.json").is_file():
            return f"the node module {package!r} is not installed: run `npm ci` in {PACKAGE_DIR}"
    return None


def render(
    cards: Sequence[tuple[str, dict[str, Any]]], out_dir: Path, *, width: int = CARD_WIDTH
) -> list[Rendered]:
    """Write each card as NAME.json and NAME.png in `out_dir`, with what the renderer found."""
    problem = missing()
    if problem:
        raise RendererUnavailable(problem)
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name, content in cards:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"card name {name!r} is not a plain file name")
        card_path = out_dir / f"{name}.json"
        card_path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", "utf-8")
        jobs.append({"name": name, "card": str(card_path), "png": str(out_dir / f"{name}.png")})
    with tempfile.TemporaryDirectory(prefix="card-render-") as scratch:
        jobs_file = Path(scratch) / "jobs.json"
        jobs_file.write_text(
            json.dumps({"chromium": chromium(), "width": width, "jobs": jobs}), "utf-8"
        )
        try:
            done = subprocess.run(
                [shutil.which("node") or "node", str(SCRIPT), str(jobs_file)],
                cwd=PACKAGE_DIR,
                capture_output=True,
                text=True,
                timeout=RENDER_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RenderFailed(f"the card renderer took over {RENDER_TIMEOUT} s") from None
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise RenderFailed(
            f"the card renderer failed (exit {done.returncode}): {detail[0]}"
            + ("".join(f"\n  {line}" for line in detail[1:12]))
        )
    try:
        results = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RenderFailed(f"the card renderer printed no results: {done.stdout[:200]!r}") from None
    return [_rendered(job, result) for job, result in zip(jobs, results, strict=True)]


def _rendered(job: dict[str, str], result: dict[str, Any]) -> Rendered:
    warnings = tuple(f"{e['phase']}/{e['kind']}: {e['message']}" for e in result["events"])
    overflow = tuple(
        f"{o['element']} {o['text']!r}: {'; '.join(o['problems'])}" for o in result["overflow"]
    )
    return Rendered(
        name=job["name"],
        card=Path(job["card"]),
        png=Path(job["png"]),
        warnings=warnings,
        overflow=overflow,
        width=int(result["width"]),
        height=int(result["height"]),
    )


def _node_major(node: str) -> int | None:
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.match(r"v(\d+)\.", version.strip())
    return int(found.group(1)) if found else None
