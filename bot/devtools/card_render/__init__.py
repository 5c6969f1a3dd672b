"""Every card the bot sends, rendered to PNG by Microsoft's Adaptive Cards renderer.

    python -m bot cards [OUT_DIR] [--width PX]

Webex's desktop and web clients build on npm `adaptivecards`. This renders each card with it in
headless Chromium at the width of a Webex message column (420 px), writes NAME.json and NAME.png
to OUT_DIR (default `build/card-renders/`), and reports the renderer's parse and validation
warnings and any content wider than the card, sticking out of it or cut off to fit.
Exit 0 when every card is clean, 1 when one is not, 2 when the renderer cannot run.

Needs `apt-get install chromium nodejs npm` (Node.js 18 or later), then `npm ci` in this
folder; `node_modules/` stays out of git. `tests/test_card_rendering.py` runs the same check
among the slow tests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.devtools.card_render.gallery import bot_cards
from bot.devtools.card_render.renderer import (
    CARD_WIDTH,
    CHROMIUM_ENV,
    Rendered,
    RendererUnavailable,
    RenderFailed,
    missing,
    missing_programs,
    render,
)

__all__ = [
    "CARD_WIDTH",
    "RenderFailed",
    "Rendered",
    "RendererUnavailable",
    "bot_cards",
    "main",
    "missing",
    "missing_programs",
    "render",
    "render_cards",
]

DEFAULT_OUT_DIR = Path("build/card-renders")  # build/ is git-ignored


def render_cards(out_dir: Path, *, width: int = CARD_WIDTH) -> list[Rendered]:
    """Render every card the bot sends into `out_dir`; RendererUnavailable says what is missing."""
    return render(bot_cards(), out_dir, width=width)


def main(argv: Sequence[str] | None = None) -> int:
    """Render, print one line per card (and its problems), and exit 0 only when all are clean."""
    parser = argparse.ArgumentParser(
        prog="python -m bot cards",
        description="Render every card the bot sends with Microsoft's Adaptive Cards renderer.",
        epilog=f"settings: {CHROMIUM_ENV} (a Chromium other than the one on PATH)",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"where NAME.json and NAME.png go (default: {DEFAULT_OUT_DIR}/)",
    )
    parser.add_argument(
        "--width",
        type=int,
        default=CARD_WIDTH,
        help=f"card container width in px (default: {CARD_WIDTH})",
    )
    args = parser.parse_args(argv)
    if args.width < 100:
        parser.error("--width must be at least 100 px")
    try:
        results = render_cards(args.out_dir, width=args.width)
    except (RendererUnavailable, RenderFailed) as error:
        print(f"card rendering: {error}", file=sys.stderr)
        return 2
    for result in results:
        verdict = "ok  " if result.ok else "FAIL"
        print(f"{verdict} {result.name:<28} {result.width}x{result.height} px  {result.png}")
        for problem in result.problems:
            print(f"       {problem}")
    bad = sum(not r.ok for r in results)
    print(f"{len(results)} cards rendered at {args.width} px, {bad} with problems")
    return 1 if bad else 0
