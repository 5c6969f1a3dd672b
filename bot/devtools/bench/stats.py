"""Percentiles within a run and medians across runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: a value that was actually observed."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread_ms(seconds: Sequence[float], points: Sequence[int] = PERCENTILES) -> dict[str, float]:
    """Percentiles of durations given in seconds, in milliseconds."""
    return {f"p{p}": percentile(seconds, p) * 1000 for p in points}


def median_of(runs: Sequence[Any]) -> Any:
    """The element-wise median of several runs' figures (dicts, lists and numbers alike)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_of([run[key] for run in runs]) for key in first}
    if isinstance(first, list):
        return [median_of(column) for column in zip(*runs, strict=False)]
    if isinstance(first, bool | str) or first is None:
        return first
    return statistics.median(runs)
