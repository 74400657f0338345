"""The sandbox's metric store: CloudWatch statistics, dimensions and EMF, hand-computed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from moto import mock_aws

from sandbox.metrics import (
    BASIC_STATISTICS,
    LAMBDA_NAMESPACE,
    Aggregates,
    MetricStore,
    cloudwatch_mirror,
    lambda_dimension_sets,
    percentile,
    put_metric_data_datums,
    record_lambda_invocation,
    record_lambda_throttle,
)

T0 = 1_700_000_040.0  # a minute boundary (divisible by 60)
FN = "ledger-fn"
ALIAS = {"FunctionName": FN, "Resource": f"{FN}:live"}


def _store_with(values: list[float], *, at: float = T0) -> MetricStore:
    store = MetricStore()
    for value in values:
        store.put("NS", "Duration", {"FunctionName": FN}, value, at + 1)
    return store


def test_p99_of_one_to_a_hundred_is_99_and_p50_is_50() -> None:
    store = _store_with([float(v) for v in range(100, 0, -1)])

    def stat(name: str) -> float:
        ((_, value),) = store.statistic(
            "NS", "Duration", {"FunctionName": FN}, name, 60, T0, T0 + 60
        )
        return value

    assert stat("p99") == 99.0
    assert stat("p50") == 50.0
    assert stat("p100") == 100.0
    assert stat("p99.9") == 100.0
    assert stat("p0") == 1.0


def test_p99_of_few_values_is_the_largest() -> None:
    # Nearest rank: with 10 values, 99% of them means all 10, so p99 is the maximum.
    assert percentile([5, 1, 9, 3, 7, 2, 8, 4, 6, 30], 99) == 30


def test_percentile_is_not_available_when_a_value_is_negative() -> None:
    store = _store_with([1.0, -2.0, 3.0])
    assert store.statistic("NS", "Duration", {"FunctionName": FN}, "p90", 60, T0, T0 + 60) == []
    assert store.statistic("NS", "Duration", {"FunctionName": FN}, "Sum", 60, T0, T0 + 60) == [
        (T0, 2.0)
    ]


def test_basic_statistics_per_period() -> None:
    store = MetricStore()
    for offset, value in [(0, 1.0), (30, 3.0), (59.9, 2.0), (60, 10.0), (185, 4.0)]:
        store.put("NS", "M", {}, value, T0 + offset)

    def series(stat: str) -> list[tuple[float, float]]:
        return store.statistic("NS", "M", {}, stat, 60, T0, T0 + 240)

    assert series("Sum") == [(T0, 6.0), (T0 + 60, 10.0), (T0 + 180, 4.0)]
    assert series("SampleCount") == [(T0, 3.0), (T0 + 60, 1.0), (T0 + 180, 1.0)]
    assert series("Average") == [(T0, 2.0), (T0 + 60, 10.0), (T0 + 180, 4.0)]
    assert series("Minimum")[0] == (T0, 1.0)
    assert series("Maximum")[0] == (T0, 3.0)


def test_end_is_exclusive_and_start_inclusive() -> None:
    store = MetricStore()
    store.put("NS", "M", {}, 1.0, T0)
    store.put("NS", "M", {}, 1.0, T0 + 60)
    assert store.statistic("NS", "M", {}, "Sum", 60, T0, T0 + 60) == [(T0, 1.0)]


def test_dimensions_match_exactly_never_a_subset() -> None:
    store = MetricStore()
    store.put("NS", "M", {"FunctionName": FN, "Resource": f"{FN}:live"}, 1.0, T0)
    assert store.statistic("NS", "M", {"FunctionName": FN}, "Sum", 60, T0, T0 + 60) == []
    assert store.statistic(
        "NS", "M", {"Resource": f"{FN}:live", "FunctionName": FN}, "Sum", 60, T0, T0 + 60
    ) == [(T0, 1.0)]


@pytest.mark.parametrize("stat", ["p101", "P99", "tm90", "p99.999", "avg", "IQM", ""])
def test_unsupported_statistic_is_a_value_error_naming_it(stat: str) -> None:
    with pytest.raises(ValueError, match="unsupported statistic") as raised:
        MetricStore().statistic("NS", "M", {}, stat, 60, T0, T0 + 60)
    assert repr(stat) in str(raised.value)


def test_an_alias_invocation_is_published_under_every_dimension_set_lambda_uses() -> None:
    store = MetricStore()
    record_lambda_invocation(
        store,
        function_name=FN,
        qualifier="live",
        executed_version="2",
        timestamp=T0 + 5,
        duration_ms=120.0,
        error=True,
    )
    dimension_sets = [dims for ns, name, dims in store.metrics() if name == "Errors"]
    expected = [{}, {"FunctionName": FN}, ALIAS, {**ALIAS, "ExecutedVersion": "2"}]
    assert sorted(map(sorted, map(dict.items, dimension_sets))) == sorted(
        map(sorted, map(dict.items, expected))
    )
    assert store.statistic(LAMBDA_NAMESPACE, "Errors", ALIAS, "Sum", 60, T0, T0 + 60) == [(T0, 1.0)]
    assert store.statistic(LAMBDA_NAMESPACE, "Duration", ALIAS, "Maximum", 60, T0, T0 + 60) == [
        (T0, 120.0)
    ]


def test_a_success_publishes_errors_zero_so_the_error_series_has_data() -> None:
    store = MetricStore()
    record_lambda_invocation(
        store,
        function_name=FN,
        qualifier="live",
        executed_version="1",
        timestamp=T0,
        duration_ms=5.0,
        error=False,
    )
    assert store.statistic(LAMBDA_NAMESPACE, "Errors", ALIAS, "Sum", 60, T0, T0 + 60) == [(T0, 0.0)]


def test_a_version_invocation_has_no_executed_version_set() -> None:
    sets = lambda_dimension_sets(FN, "2", "2")
    assert sets == [{}, {"FunctionName": FN}, {"FunctionName": FN, "Resource": f"{FN}:2"}]
    assert lambda_dimension_sets(FN, None, "$LATEST") == [{}, {"FunctionName": FN}]


def test_a_throttle_is_not_an_invocation() -> None:
    store = MetricStore()
    record_lambda_throttle(store, function_name=FN, qualifier="live", timestamp=T0)
    names = {name for _, name, _ in store.metrics()}
    assert names == {"Throttles"}


def test_emf_lines_from_powertools_are_stored(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics(namespace="UploadLedger", service="upload-ledger")
    # Powertools' Metrics instances share their dimensions process-wide: an earlier test's
    # handler import may have set `stage` already (a PowertoolsUserWarning if set again).
    metrics.clear_default_dimensions()
    metrics.clear_metrics()
    metrics.set_default_dimensions(stage="dev")
    metrics.add_metric(name="FilesRecorded", unit=MetricUnit.Count, value=3)
    metrics.add_metric(name="RecordFailures", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    # flush_metrics() leaves the defaults in the shared dimension set: clear both.
    metrics.clear_default_dimensions()
    metrics.clear_metrics()
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    when = json.loads(line)["_aws"]["Timestamp"] / 1000

    store = MetricStore()
    assert store.put_emf(line) == 2
    dims = {"service": "upload-ledger", "stage": "dev"}
    start = when - when % 60
    assert store.statistic("UploadLedger", "FilesRecorded", dims, "Sum", 60, start, start + 60) == [
        (start, 3.0)
    ]


def test_emf_array_values_each_count_and_timestamp_can_be_overridden() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "NS",
                        "Dimensions": [["service"], []],
                        "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}],
                    }
                ],
            },
            "service": "s",
            "Latency": [10, 20, 30],
        }
    )
    store = MetricStore()
    assert store.put_emf(line, timestamp=T0) == 6
    assert store.statistic("NS", "Latency", {"service": "s"}, "SampleCount", 60, T0, T0 + 60) == [
        (T0, 3.0)
    ]
    assert store.statistic("NS", "Latency", {}, "Sum", 60, T0, T0 + 60) == [(T0, 60.0)]


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: 1 Version: 1",
        '{"level": "INFO", "message": "recorded"}',
        '{"_aws": "not an object"}',
        '{"_aws": {"CloudWatchMetrics": []}}',
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "NS", '
        '"Dimensions": [["missing"]], "Metrics": [{"Name": "M"}]}]}, "M": 1}',
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "NS", '
        '"Dimensions": [[]], "Metrics": [{"Name": "M"}]}]}, "M": "one"}',
        '{"_aws": ',
    ],
)
def test_lines_that_are_not_valid_emf_store_nothing(line: str) -> None:
    store = MetricStore()
    assert store.put_emf(line) == 0
    assert store.metrics() == []


def test_mirror_receives_one_statistic_set_per_series_and_minute_on_flush() -> None:
    sent: list[Aggregates] = []
    store = MetricStore(mirror=sent.append)
    for value, at in ((2.0, T0 + 1), (5.0, T0 + 59), (3.0, T0 + 30), (7.0, T0 + 61)):
        store.put("NS", "M", {"a": "1"}, value, at, "Count")
    assert sent == []
    store.flush()
    store.flush()  # nothing new: no call

    ((aggregates),) = sent
    ((namespace, datums),) = put_metric_data_datums(aggregates).items()
    assert namespace == "NS"
    by_minute = {datum["Timestamp"].timestamp(): datum for datum in datums}
    assert by_minute.keys() == {T0, T0 + 60}
    first = by_minute[T0]
    assert first["Dimensions"] == [{"Name": "a", "Value": "1"}]
    assert first["Unit"] == "Count"
    assert first["StatisticValues"] == {
        "SampleCount": 3.0,
        "Sum": 10.0,
        "Minimum": 2.0,
        "Maximum": 5.0,
    }
    assert by_minute[T0 + 60]["StatisticValues"]["SampleCount"] == 1.0


def _invocations_over_three_minutes(store: MetricStore) -> None:
    """Invocations of an alias with varied durations, some failing, with EMF lines."""
    for n in range(90):
        emf = {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "UploadLedger",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": "FilesRecorded", "Unit": "Count"}],
                    }
                ],
            },
            "service": "upload-ledger",
            "FilesRecorded": n % 3,
        }
        at = T0 + n * 2.1
        record_lambda_invocation(
            store,
            function_name=FN,
            qualifier="live",
            executed_version=str(1 + n % 2),
            timestamp=at,
            duration_ms=0.37 + n * 1.713,
            error=n % 7 == 0,
            emf_lines=[json.dumps(emf)],
            emf_timestamp=at,
        )


def test_moto_answers_the_mirrored_statistics_as_the_store_does() -> None:
    """What `aws cloudwatch get-metric-data` / `get-metric-statistics` return against the
    sandbox agrees with the store, per minute, for every basic statistic."""
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="eu-central-1")
        store = MetricStore(mirror=cloudwatch_mirror(cloudwatch))
        _invocations_over_three_minutes(store)
        start, end = T0, T0 + 240
        when = {"StartTime": datetime.fromtimestamp(start, UTC)}
        when["EndTime"] = datetime.fromtimestamp(end, UTC)
        series = store.metrics()
        # 3 metrics x 5 dimension sets (two executed versions), and the EMF metric
        assert len(series) == 16
        for namespace, name, dimensions in series:
            if not dimensions:
                continue  # moto adds up every dimension set then (README: known differences)
            metric = {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            }
            queries = [
                {"Id": stat.lower(), "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat}}
                for stat in BASIC_STATISTICS
            ]
            answers = cloudwatch.get_metric_data(
                MetricDataQueries=queries, ScanBy="TimestampAscending", **when
            )["MetricDataResults"]
            for stat, answer in zip(BASIC_STATISTICS, answers, strict=True):
                expected = store.statistic(namespace, name, dimensions, stat, 60, start, end)
                got = [
                    (t.timestamp(), v)
                    for t, v in zip(answer["Timestamps"], answer["Values"], strict=True)
                ]
                assert [t for t, _ in got] == [t for t, _ in expected], (name, dimensions, stat)
                assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-12)
        # get-metric-statistics: moto matches dimensions as a subset, so ask for a series
        # no other one contains.
        version = {**ALIAS, "ExecutedVersion": "2"}
        answer = cloudwatch.get_metric_statistics(
            Namespace=LAMBDA_NAMESPACE,
            MetricName="Duration",
            Dimensions=[{"Name": k, "Value": v} for k, v in version.items()],
            Period=60,
            Statistics=list(BASIC_STATISTICS),
            **when,
        )["Datapoints"]
        for stat in BASIC_STATISTICS:
            expected = store.statistic(LAMBDA_NAMESPACE, "Duration", version, stat, 60, start, end)
            got = sorted((p["Timestamp"].timestamp(), p[stat]) for p in answer)
            assert [t for t, _ in got] == [t for t, _ in expected]
            assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-12)


def test_the_mirrors_volume_follows_the_series_not_the_datapoints() -> None:
    sent: list[Aggregates] = []
    store = MetricStore(mirror=lambda aggregates: sent.append(dict(aggregates)))
    for _ in range(3):
        _invocations_over_three_minutes(store)
    merged: Aggregates = {}
    for aggregates in sent:
        merged.update(aggregates)
    datums = put_metric_data_datums(merged)
    # 16 series, in 4 minutes (the last invocations start in the fourth): 64 datums for
    # 270 invocations of 13 datapoints each.
    assert len(datums["AWS/Lambda"]) + len(datums["UploadLedger"]) == 4 * 16


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="rejects"):
        MetricStore().put("NS", "M", {}, float("nan"), T0)
