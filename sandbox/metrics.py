"""The sandbox's CloudWatch metrics: one store for what Lambda and the handler publish.

Every datapoint the sandbox sees lands here: Lambda's own `AWS/Lambda` metrics for each
invocation (:func:`record_lambda_invocation`) and the handler's Embedded Metric Format
lines from its log output (:meth:`MetricStore.put_emf`). The release drill's alarms and
the console read it back with :meth:`MetricStore.statistic`, which answers as CloudWatch's
GetMetricStatistics does, percentiles included.

A metric is identified as in CloudWatch: namespace + metric name + the *full* set of
dimensions (name -> value). `{FunctionName: f}` and `{FunctionName: f, Resource: f:live}`
are two different metrics; a query matches one exactly, never a subset.

moto's CloudWatch holds the same statistics when a mirror is attached (so `aws cloudwatch
get-metric-statistics` against the sandbox sees them): each series' datapoints of one
minute go as one statistic set (PutMetricData's `StatisticValues`), stamped with the
minute's start, as CloudWatch keeps standard-resolution metrics at one-minute granularity
anyway. So the mirror's volume follows the number of series, not of datapoints, and its
Sum, SampleCount, Minimum, Maximum and Average per minute are the store's. moto answers no
percentiles and no metric math: those are computed here, from the store.

Sources:
- statistics: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html
  (pNN.NN between p0.0 and p100, at most two decimals; no percentile when a value is negative);
- Lambda's metrics and dimensions:
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
- EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
- statistic sets and one-minute storage of standard-resolution metrics:
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/publishingMetrics.html
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

LAMBDA_NAMESPACE = "AWS/Lambda"
BASIC_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"^p(\d{1,3}(?:\.\d{1,2})?)$")
# PutMetricData takes at most 1,000 datums per call.
MIRROR_BATCH = 1000
# Standard resolution: CloudWatch keeps one aggregate per series and minute.
STORAGE_RESOLUTION_SECONDS = 60
# How long the background mirror merges statistic sets before it sends them: the
# emulator's CloudWatch lags this much at most (a drain sends at once).
MIRROR_WINDOW_SECONDS = 5.0

Dimensions = Mapping[str, str]
MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


class Datapoint(NamedTuple):  # a tuple: made for every datapoint, cheaply
    """One value as published: epoch seconds, the value, its CloudWatch unit."""

    timestamp: float
    value: float
    unit: str


@dataclass(slots=True)
class StatisticSet:
    """CloudWatch's StatisticSet (PutMetricData's `StatisticValues`) of some datapoints."""

    sample_count: float
    sum: float
    minimum: float
    maximum: float

    def add(self, value: float) -> None:
        self.sample_count += 1.0
        self.sum += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def merge(self, other: StatisticSet) -> None:
        self.sample_count += other.sample_count
        self.sum += other.sum
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def as_statistic_values(self) -> dict[str, float]:
        return {
            "SampleCount": self.sample_count,
            "Sum": self.sum,
            "Minimum": self.minimum,
            "Maximum": self.maximum,
        }


# One series in one minute: (metric key, unit, the minute's start in epoch seconds).
MinuteKey = tuple[MetricKey, str, float]
Aggregates = dict[MinuteKey, StatisticSet]
# Receives what was put since the last flush, one statistic set per series and minute.
Mirror = Callable[[Aggregates], None]


class MetricStore:
    """CloudWatch's metric store, in memory and thread-safe.

    `mirror`, when given, receives every datapoint too, merged into one statistic set per
    series and minute (see :func:`cloudwatch_mirror`); it is called by :meth:`flush`, which
    the recording functions call after each batch.
    """

    def __init__(self, mirror: Mirror | None = None) -> None:
        self._lock = threading.Lock()
        self._series: dict[MetricKey, list[Datapoint]] = defaultdict(list)
        self._mirror = mirror
        self._pending: Aggregates = {}

    def set_mirror(self, mirror: Mirror | None) -> None:
        """Attach (or detach) the mirror, e.g. once the emulator is up."""
        with self._lock:
            self._mirror = mirror

    def put(  # noqa: PLR0917 - CloudWatch's datum fields, positional as the console uses them
        self,
        namespace: str,
        metric_name: str,
        dimensions: Dimensions,
        value: float,
        timestamp: float,
        unit: str = "None",
    ) -> None:
        """Store one datapoint; `timestamp` is epoch seconds (real or simulated clock)."""
        if not math.isfinite(value):
            raise ValueError(f"{namespace}/{metric_name}: CloudWatch rejects the value {value!r}")
        key = _key(namespace, metric_name, dimensions)
        value, timestamp = float(value), float(timestamp)
        with self._lock:
            self._series[key].append(Datapoint(timestamp, value, unit))
            if self._mirror is not None:
                minute = timestamp - timestamp % STORAGE_RESOLUTION_SECONDS
                statistics = self._pending.get((key, unit, minute))
                if statistics is None:
                    self._pending[key, unit, minute] = StatisticSet(1.0, value, value, value)
                else:
                    statistics.add(value)

    def flush(self) -> None:
        """Send what was put since the last flush to the mirror (no-op without one)."""
        with self._lock:
            mirror, pending = self._mirror, self._pending
            if mirror is None or not pending:
                return
            self._pending = {}
        mirror(pending)

    def statistic(  # noqa: PLR0917 - GetMetricStatistics' parameters, in its order
        self,
        namespace: str,
        metric_name: str,
        dimensions: Dimensions,
        stat: str,
        period: int,
        start: float,
        end: float,
    ) -> list[tuple[float, float]]:
        """`stat` of one metric per `period` seconds, for periods starting in [start, end).

        Returns (period start in epoch seconds, value) for each period that has data, in
        time order; periods are counted from `start` (align it to the period, as
        CloudWatch does). `stat` is SampleCount, Sum, Average, Minimum, Maximum or a
        percentile pNN / pNN.NN (p0 to p100); anything else raises ValueError naming it.
        A percentile of a period holding a negative value has no datapoint, as in
        CloudWatch.
        """
        compute = statistic_function(stat)
        if period <= 0:
            raise ValueError(f"period must be a positive number of seconds, not {period!r}")
        buckets: dict[int, list[float]] = defaultdict(list)
        with self._lock:
            points = list(self._series.get(_key(namespace, metric_name, dimensions), ()))
        for point in points:
            if start <= point.timestamp < end:
                buckets[int((point.timestamp - start) // period)].append(point.value)
        result = []
        for index in sorted(buckets):
            value = compute(buckets[index])
            period_start = start + index * period
            if value is not None and period_start < end:
                result.append((period_start, value))
        return result

    def metrics(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every (namespace, metric name, dimensions) that has data, sorted."""
        with self._lock:
            keys = [key for key, points in self._series.items() if points]
        return [(ns, name, dict(sorted(dims))) for ns, name, dims in sorted(keys, key=_sort_key)]

    def put_emf(self, log_line: str, timestamp: float | None = None) -> int:
        """Store the metrics of one Embedded Metric Format log line; returns how many.

        A line that is not an EMF document (plain text, other JSON, a malformed directive)
        stores nothing and returns 0, as CloudWatch Logs keeps such a line as a log only.
        `timestamp` (epoch seconds) replaces the document's `_aws.Timestamp`, for callers
        on a simulated clock.
        """
        document = _emf_document(log_line)
        if document is None:
            return 0
        metadata = document["_aws"]
        when = timestamp if timestamp is not None else float(metadata["Timestamp"]) / 1000.0
        stored = 0
        for directive in metadata["CloudWatchMetrics"]:
            for namespace, name, dimensions, values, unit in _directive_datapoints(
                document, directive
            ):
                for value in values:
                    self.put(namespace, name, dimensions, value, when, unit)
                    stored += 1
        self.flush()
        return stored


def statistic_function(stat: str) -> Callable[[list[float]], float | None]:
    """The function computing `stat` over one period's values; ValueError if unsupported."""
    basic: dict[str, Callable[[list[float]], float | None]] = {
        "SampleCount": lambda values: float(len(values)),
        "Sum": lambda values: float(sum(values)),
        "Average": lambda values: sum(values) / len(values),
        "Minimum": min,
        "Maximum": max,
    }
    if stat in basic:
        return basic[stat]
    match = _PERCENTILE.match(stat)
    if match is None or float(match.group(1)) > 100:
        raise ValueError(
            f"unsupported statistic {stat!r}: use {', '.join(BASIC_STATISTICS)} or a percentile "
            "p0 to p100 with at most two decimals (p99, p99.9)"
        )
    rank = float(match.group(1))
    return lambda values: percentile(values, rank)


def percentile(values: Iterable[float], rank: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `rank`% of values <= it.

    CloudWatch doesn't publish its interpolation; nearest rank is the textbook rule and
    agrees with it on exact cases (p99 of 1..100 is 99, p50 is 50, p100 the maximum).
    None when there are no values or one is negative (CloudWatch offers no percentile then).
    """
    ordered = sorted(values)
    if not ordered or ordered[0] < 0:
        return None
    position = max(1, math.ceil(rank / 100.0 * len(ordered)))
    return ordered[position - 1]


def record_lambda_invocation(
    store: MetricStore,
    *,
    function_name: str,
    qualifier: str | None,
    executed_version: str,
    timestamp: float,
    duration_ms: float,
    error: bool,
    emf_lines: Iterable[str] = (),
    emf_timestamp: float | None = None,
) -> None:
    """Publish what AWS publishes for one invocation: Lambda's AWS/Lambda metrics, and the
    metrics CloudWatch Logs extracts from the function's EMF log lines (`emf_lines`, stamped
    `emf_timestamp` on a simulated clock, else with their own `_aws.Timestamp`).

    Invocations (1), Errors (1 or 0: Lambda publishes the outcome of every invocation) and
    Duration (milliseconds), each under the dimension sets Lambda emits for how the
    function was invoked:
    - always: none (all functions in the Region) and {FunctionName};
    - through an alias or a version (`qualifier`): {FunctionName, Resource=function:qualifier};
    - through an alias only: also {FunctionName, Resource, ExecutedVersion}, which tells the
      versions behind a weighted alias apart.
    The timestamp is when the invocation started (Lambda's rule), epoch seconds.
    """
    for dimensions in lambda_dimension_sets(function_name, qualifier, executed_version):
        store.put(LAMBDA_NAMESPACE, "Invocations", dimensions, 1.0, timestamp, "Count")
        store.put(LAMBDA_NAMESPACE, "Errors", dimensions, float(error), timestamp, "Count")
        store.put(LAMBDA_NAMESPACE, "Duration", dimensions, duration_ms, timestamp, "Milliseconds")
    for line in emf_lines:
        store.put_emf(line, timestamp=emf_timestamp)
    store.flush()


def record_lambda_throttle(
    store: MetricStore,
    *,
    function_name: str,
    qualifier: str | None,
    timestamp: float,
) -> None:
    """Publish one throttled invocation request: Throttles only (it is not an invocation).

    A throttled request never reaches a version, so there is no ExecutedVersion set.
    """
    for dimensions in lambda_dimension_sets(function_name, qualifier, None):
        store.put(LAMBDA_NAMESPACE, "Throttles", dimensions, 1.0, timestamp, "Count")
    store.flush()


def lambda_dimension_sets(
    function_name: str, qualifier: str | None, executed_version: str | None
) -> list[dict[str, str]]:
    """The dimension sets of one invocation's AWS/Lambda datapoints (see above)."""
    sets: list[dict[str, str]] = [{}, {"FunctionName": function_name}]
    if qualifier and qualifier != "$LATEST":
        resource = {"FunctionName": function_name, "Resource": f"{function_name}:{qualifier}"}
        sets.append(resource)
        if executed_version is not None and not qualifier.isdigit():
            sets.append({**resource, "ExecutedVersion": executed_version})
    return sets


def cloudwatch_mirror(cloudwatch: Any) -> Mirror:
    """A mirror that writes statistic sets to a CloudWatch (moto's) with PutMetricData:
    one call per namespace and 1,000 datums, each datum one series' minute."""

    def mirror(aggregates: Aggregates) -> None:
        for namespace, datums in put_metric_data_datums(aggregates).items():
            for start in range(0, len(datums), MIRROR_BATCH):
                cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=datums[start : start + MIRROR_BATCH]
                )

    return mirror


def put_metric_data_datums(aggregates: Aggregates) -> dict[str, list[dict[str, Any]]]:
    """PutMetricData's MetricData for each namespace: a `StatisticValues` datum per series
    and minute, stamped with the minute's start."""
    datums: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ((namespace, name, dimensions), unit, minute), statistics in aggregates.items():
        datums[namespace].append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions)],
                "Timestamp": datetime.fromtimestamp(minute, UTC),
                "StatisticValues": statistics.as_statistic_values(),
                "Unit": unit,
            }
        )
    return datums


class BackgroundMirror:
    """A mirror that hands what it receives to a thread of its own, which sends it to
    `mirror` after merging it for `window` seconds.

    Metrics are published from busy threads: the relay that hands over the emulator's
    requests (S3 and SQS metrics, see sandbox.service_metrics) and the runtime's after
    each invocation (Lambda's). Sent from there, each PutMetricData would hold that
    thread for an HTTP round trip to the emulator; sent from here it holds none, and what
    arrives within a window goes as one statistic set per series and minute: a burst of
    invocations costs the emulator a few calls a second, not one datum per datapoint.
    """

    def __init__(self, mirror: Mirror, window: float = MIRROR_WINDOW_SECONDS) -> None:
        self._mirror = mirror
        self._window = window
        self._pending: Aggregates = {}
        self._sending = False
        self._closed = False
        self._draining = 0  # callers waiting in drain(): send at once, don't merge longer
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sandbox-metrics-mirror")
        self._thread.daemon = True
        self._thread.start()

    def __call__(self, aggregates: Aggregates) -> None:
        with self._condition:
            notify = not self._pending
            # The store hands its statistic sets over (it starts new ones after a flush).
            for key, statistics in aggregates.items():
                mine = self._pending.get(key)
                if mine is None:
                    self._pending[key] = statistics
                else:
                    mine.merge(statistics)
            if notify:
                self._condition.notify_all()

    def drain(self, timeout: float) -> bool:
        """Send what was handed over so far now, and wait until it was sent; False if
        `timeout` passed first."""
        with self._condition:
            self._draining += 1
            self._condition.notify_all()
            try:
                return self._condition.wait_for(
                    lambda: not self._pending and not self._sending, timeout=timeout
                )
            finally:
                self._draining -= 1

    def close(self) -> None:
        """Send what is queued, then stop the thread."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed, and nothing left to send
                # Merge what comes within the window (unless someone waits for it).
                self._condition.wait_for(
                    lambda: self._closed or self._draining > 0, timeout=self._window
                )
                pending, self._pending = self._pending, {}
                self._sending = True
            try:
                self._mirror(pending)
            except Exception as error:  # the store keeps every datapoint; say what was lost
                print(
                    f"sandbox: mirroring metrics to CloudWatch failed: {error!r}", file=sys.stderr
                )
            finally:
                with self._condition:
                    self._sending = False
                    self._condition.notify_all()


def _key(namespace: str, metric_name: str, dimensions: Dimensions) -> MetricKey:
    return (namespace, metric_name, frozenset((str(k), str(v)) for k, v in dimensions.items()))


def _sort_key(key: MetricKey) -> tuple[str, str, list[tuple[str, str]]]:
    return (key[0], key[1], sorted(key[2]))


def _emf_document(log_line: str) -> dict[str, Any] | None:
    """The parsed line if it is an EMF document (a JSON object with _aws metadata)."""
    text = log_line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    metadata = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        return None
    if not isinstance(metadata.get("Timestamp"), int | float) or not isinstance(
        metadata.get("CloudWatchMetrics"), list
    ):
        return None
    parsed: dict[str, Any] = document
    return parsed


def _directive_datapoints(
    document: dict[str, Any], directive: Any
) -> Iterable[tuple[str, str, dict[str, str], list[float], str]]:
    """(namespace, name, dimensions, values, unit) for one MetricDirective.

    Each dimension set of the directive yields each of its metrics; a directive or metric
    that breaks the specification (missing target member, non-numeric value, dimension
    value not a string) is skipped, as CloudWatch Logs skips it.
    """
    if not isinstance(directive, dict) or not isinstance(directive.get("Namespace"), str):
        return
    for dimension_set in directive.get("Dimensions") or [[]]:
        if not isinstance(dimension_set, list):
            continue
        values_of = {name: document.get(name) for name in dimension_set}
        if not all(isinstance(v, str) for v in values_of.values()):
            continue
        dimensions = {str(k): str(v) for k, v in values_of.items()}
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name") if isinstance(metric, dict) else None
            values = _numbers(document.get(name)) if isinstance(name, str) else None
            if name and values:
                unit = str(metric.get("Unit") or "None")
                yield directive["Namespace"], name, dimensions, values, unit


def _numbers(value: Any) -> list[float] | None:
    items = value if isinstance(value, list) else [value]
    if not items or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in items
    ):
        return None
    return [float(v) for v in items]
