"""Warm cost per event: the real handler and the bare baseline, same endpoint, same run."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.environment import handler_environment
from bench.settings import (
    BARE_HANDLER_MODULE,
    REAL_HANDLER_MODULE,
    RECORDS_PER_EVENT,
    REPO_ROOT,
    WARM_RATIO_TARGET,
    Sizes,
)
from bench.stats import mean, median, ms, ratio

HANDLERS = {"handler": REAL_HANDLER_MODULE, "baseline": BARE_HANDLER_MODULE}


def _run_worker(module: str, endpoint: str, sizes: Sizes) -> dict[str, Any]:
    spec = {
        "module": module,
        "records_per_event": list(RECORDS_PER_EVENT),
        "total_records": sizes.warm_records,
        "warmup_events": sizes.warmup_events,
    }
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and module, no shell
        [sys.executable, "-m", "bench.worker", json.dumps(spec)],
        cwd=REPO_ROOT,
        env=handler_environment(endpoint),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


PerHandlerAndSize = dict[str, dict[str, list[float]]]


def _collect(endpoint: str, sizes: Sizes) -> tuple[PerHandlerAndSize, PerHandlerAndSize]:
    """Per handler and event size: every event's duration and log volume, over all rounds."""
    collected: PerHandlerAndSize = {
        name: {str(n): [] for n in RECORDS_PER_EVENT} for name in HANDLERS
    }
    log_bytes: PerHandlerAndSize = {
        name: {str(n): [] for n in RECORDS_PER_EVENT} for name in HANDLERS
    }
    names = list(HANDLERS)
    for round_index in range(sizes.warm_rounds):
        # Alternate who goes first, so a slow patch of the machine hits both alike.
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            for size, figures in _run_worker(HANDLERS[name], endpoint, sizes).items():
                collected[name][size].extend(figures["event_ns"])
                log_bytes[name][size].append(figures["log_bytes_per_event"])
    return collected, log_bytes


def measure_warm(endpoint: str, sizes: Sizes) -> dict[str, Any]:
    """Median and mean cost per event and per record, and the handler/baseline ratio."""
    durations, log_bytes = _collect(endpoint, sizes)
    by_size: dict[str, Any] = {}
    for records in RECORDS_PER_EVENT:
        size = str(records)
        row: dict[str, Any] = {"records_per_event": records}
        for name in HANDLERS:
            events = durations[name][size]
            row[name] = {
                "events": len(events),
                "median_ms_per_event": ms(median(events)),
                "mean_ms_per_event": ms(mean(events)),
                "median_ms_per_record": ms(median(events)) / records,
                "log_bytes_per_event": mean(log_bytes[name][size]),
            }
        row["ratio"] = ratio(
            row["handler"]["median_ms_per_event"], row["baseline"]["median_ms_per_event"]
        )
        by_size[size] = row
    one, most = str(RECORDS_PER_EVENT[0]), str(RECORDS_PER_EVENT[-1])
    return {
        "by_records_per_event": by_size,
        # S3 sends one record per event: that is the headline ratio.
        "ratio": by_size[one]["ratio"],
        "target_ratio": WARM_RATIO_TARGET,
        # Per-record cost at the largest event over the smallest: 1.0 (or less) is flat.
        "per_record_growth": ratio(
            by_size[most]["handler"]["median_ms_per_record"],
            by_size[one]["handler"]["median_ms_per_record"],
        ),
    }
