"""Small statistics helpers shared by the sections."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def ms(ns: float) -> float:
    return ns / 1e6


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values))


def ratio(measured: float, baseline: float) -> float:
    return measured / baseline
