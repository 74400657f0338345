"""Warm cost per event: the real handler and the bare baseline, same endpoint, same run.

Each handler lives in its own worker process (what a handler imports and sets up, the
X-Ray SDK's recorder too, is process-wide: none may share another's). The real handler
is measured twice, in two workers: every invocation sampled by X-Ray ("handler", the
dearer case) and none ("handler_untraced", most invocations at volume: Lambda's default
sampling rule traces one request a second and 5 % of the rest). All get the same batches
of events, in turn, batch by batch: load on the machine hits them alike, and the ratios
stay meaningful.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple

from bench.environment import handler_environment
from bench.serializer import serialization_us_per_record
from bench.settings import (
    BARE_HANDLER_MODULE,
    OVERHEAD_CPU_MS_TARGET,
    OVERHEAD_US_PER_RECORD_TARGET,
    REAL_HANDLER_MODULE,
    RECORDS_PER_BATCH,
    RECORDS_PER_EVENT,
    REPO_ROOT,
    UNDECORATED_HANDLER_MODULE,
    Sizes,
)
from bench.stats import mean, median, ms, ratio


class Measured(NamedTuple):
    """What one worker runs: the handler module, and whether X-Ray samples its invocations."""

    module: str
    traced: bool


HANDLERS = {
    "handler": Measured(REAL_HANDLER_MODULE, traced=True),
    "handler_untraced": Measured(REAL_HANDLER_MODULE, traced=False),
    # The baseline and the undecorated handler do no X-Ray work: the header changes nothing.
    "baseline": Measured(BARE_HANDLER_MODULE, traced=True),
    # The handler without Powertools: splits handler/baseline into logic and observability.
    "undecorated": Measured(UNDECORATED_HANDLER_MODULE, traced=True),
}


class Worker:
    """A running :mod:`bench.worker`: send it a batch, get every event's duration back.

    ``traced`` goes with every batch: whether the worker's invocations are sampled.
    """

    def __init__(self, process: subprocess.Popen[str], traced: bool) -> None:
        self._process = process
        self._traced = traced
        self._read()  # the handler is imported and ready

    def run_batch(self, records: int, events: int) -> dict[str, Any]:
        assert self._process.stdin is not None  # noqa: S101 -- Popen(stdin=PIPE) guarantees it
        request = {"records": records, "events": events, "traced": self._traced}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None  # noqa: S101 -- Popen(stdout=PIPE) guarantees it
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker exited with {self._process.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply


@contextmanager
def _worker(measured: Measured, endpoint: str) -> Iterator[Worker]:
    with subprocess.Popen(  # noqa: S603 -- our own interpreter and module, no shell
        [sys.executable, "-m", "bench.worker", measured.module],
        cwd=REPO_ROOT,
        env=handler_environment(endpoint),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            yield Worker(process, measured.traced)
        finally:
            assert process.stdin is not None  # noqa: S101 -- Popen(stdin=PIPE) guarantees it
            process.stdin.close()  # the worker's loop ends and it exits


PerHandler = dict[str, list[float]]


def _measure_size(
    workers: dict[str, Worker], records: int, sizes: Sizes
) -> tuple[PerHandler, PerHandler, PerHandler]:
    """Every event's duration and CPU time, and the log bytes per event, per handler, for
    one event size."""
    events_per_batch = max(1, RECORDS_PER_BATCH // records)
    batches = max(
        1,
        sizes.warm_records // (events_per_batch * records),
        math.ceil(sizes.warm_min_events / events_per_batch),
    )
    durations: PerHandler = {name: [] for name in workers}
    cpu: PerHandler = {name: [] for name in workers}
    log_bytes: PerHandler = {name: [] for name in workers}
    for worker in workers.values():
        worker.run_batch(records, sizes.warmup_events)
    for batch in range(batches):
        # Rotate who goes first, too.
        names = list(workers)
        names = names[batch % len(names) :] + names[: batch % len(names)]
        for name in names:
            reply = workers[name].run_batch(records, events_per_batch)
            durations[name].extend(reply["event_ns"])
            cpu[name].extend(reply["event_cpu_ns"])
            log_bytes[name].append(reply["log_bytes_per_event"])
    return durations, cpu, log_bytes


def _row(
    records: int, durations: PerHandler, cpu: PerHandler, log_bytes: PerHandler
) -> dict[str, Any]:
    row: dict[str, Any] = {"records_per_event": records}
    for name, events in durations.items():
        row[name] = {
            "events": len(events),
            "median_ms_per_event": ms(median(events)),
            "mean_ms_per_event": ms(mean(events)),
            "median_ms_per_record": ms(median(events)) / records,
            "median_cpu_ms_per_event": ms(median(cpu[name])),
            "log_bytes_per_event": mean(log_bytes[name]),
        }
    handler_ms = row["handler"]["median_ms_per_event"]
    undecorated_ms = row["undecorated"]["median_ms_per_event"]
    baseline_ms = row["baseline"]["median_ms_per_event"]
    # The traced handler's, the conservative figure; the untraced one's, the common case.
    row["ratio"] = ratio(handler_ms, baseline_ms)
    row["untraced_ratio"] = ratio(row["handler_untraced"]["median_ms_per_event"], baseline_ms)
    # What Powertools (logs, metrics, traces) adds, and what validation, ordering and the
    # conditional put add over a blind put_item; their product is the ratio above.
    row["observability_ratio"] = ratio(handler_ms, undecorated_ms)
    row["logic_ratio"] = ratio(undecorated_ms, baseline_ms)
    return row


def measure_warm(
    endpoint: str, sizes: Sizes, records_per_event: tuple[int, ...] = RECORDS_PER_EVENT
) -> dict[str, Any]:
    """Median and mean cost per event and per record, and the handler/baseline ratios
    (traced and untraced); with more than one event size, the CPU overhead too."""
    by_size: dict[str, Any] = {}
    with ExitStack() as stack:
        workers = {
            name: stack.enter_context(_worker(measured, endpoint))
            for name, measured in HANDLERS.items()
        }
        for records in records_per_event:
            by_size[str(records)] = _row(records, *_measure_size(workers, records, sizes))
    one = by_size[str(records_per_event[0])]
    result: dict[str, Any] = {
        "by_records_per_event": by_size,
        # S3 sends one record per event: that is the headline ratio (its targets are the
        # CPU overhead's, in "overhead").
        "ratio": one["ratio"],
        "untraced_ratio": one["untraced_ratio"],
    }
    if len(records_per_event) > 1:
        most = by_size[str(records_per_event[-1])]
        # Per-record cost at the largest event over the smallest: 1.0 (or less) is flat.
        result["per_record_growth"] = ratio(
            most["handler"]["median_ms_per_record"], one["handler"]["median_ms_per_record"]
        )
        result["baseline_per_record_growth"] = ratio(
            most["baseline"]["median_ms_per_record"], one["baseline"]["median_ms_per_record"]
        )
        result["overhead"] = {
            **overhead(one, most),
            # In this process, after the workers are done: the per-record figure's floor.
            "botocore_serialization_us_per_record": serialization_us_per_record(),
        }
    return result


def overhead(one: dict[str, Any], most: dict[str, Any]) -> dict[str, Any]:
    """The handler's CPU over the bare baseline's, in ms per 1-record event and in us per
    extra record: untraced (the headline, most invocations) and traced (``traced_...``).

    CPU rather than wall time, so the endpoint's speed is out of it (against the stub,
    wall and CPU nearly agree). ``one`` and ``most`` are the rows of the smallest and the
    largest event size. Both cases answer to the same targets.
    """
    untraced_ms, untraced_us = _overhead_of("handler_untraced", one, most)
    traced_ms, traced_us = _overhead_of("handler", one, most)
    return {
        "cpu_ms_per_event": untraced_ms,
        "traced_cpu_ms_per_event": traced_ms,
        "target_cpu_ms_per_event": OVERHEAD_CPU_MS_TARGET,
        "cpu_us_per_extra_record": untraced_us,
        "traced_cpu_us_per_extra_record": traced_us,
        "target_cpu_us_per_extra_record": OVERHEAD_US_PER_RECORD_TARGET,
    }


def _overhead_of(name: str, one: dict[str, Any], most: dict[str, Any]) -> tuple[float, float]:
    """(ms of CPU per 1-record event, us of CPU per extra record) that worker ``name`` spent
    over the baseline."""

    def extra_ms(row: dict[str, Any]) -> float:
        return float(
            row[name]["median_cpu_ms_per_event"] - row["baseline"]["median_cpu_ms_per_event"]
        )

    extra_records = most["records_per_event"] - one["records_per_event"]
    return extra_ms(one), (extra_ms(most) - extra_ms(one)) / extra_records * 1000
