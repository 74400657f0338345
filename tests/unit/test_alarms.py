"""Alarm evaluation against hand-computed cases: the CloudWatch guide's tables, math, delay."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmDefinition,
    UnsupportedAlarmError,
    alarm_message,
    evaluate,
    read_alarm,
)
from sandbox.metrics import MetricStore

T0 = 1_700_000_040.0  # a minute boundary
FN = "ledger-fn"
RETAIN = "retain"  # stands for "the current state" in the guide's tables


def resolve(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value == {"Ref": "Fn"}:
        return FN
    if value == {"Fn::Join": ["", [{"Ref": "Fn"}, ":live"]]}:
        return f"{FN}:live"
    if value == {"Ref": "Topic"}:
        return "arn:aws:sns:eu-central-1:123456789012:alarms"
    raise AssertionError(f"unexpected value at {where}: {value}")


def simple_alarm(m: int, n: int, treat: str, **extra: Any) -> AlarmDefinition:
    props = {
        "AlarmName": "test-alarm",
        "Namespace": "NS",
        "MetricName": "M",
        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "Fn"}}],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": n,
        "DatapointsToAlarm": m,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": treat,
        **extra,
    }
    return read_alarm("TestAlarm", props, resolve)


def state_for(pattern: str, m: int, n: int, treat: str, current: str = "OK") -> str:
    """The state after evaluating datapoints written oldest first: 0 ok, X breaching, - missing."""
    store = MetricStore()
    points = pattern.split()
    for index, point in enumerate(points):
        if point != "-":
            value = 5.0 if point == "X" else 0.0
            store.put("NS", "M", {"FunctionName": FN}, value, T0 + 60 * index + 1)
    now = T0 + 60 * len(points)  # just after the newest period ended
    return evaluate(simple_alarm(m, n, treat), store, now, current).state


# The guide's first table: DatapointsToAlarm 3 of EvaluationPeriods 3, 5 datapoints retrieved.
THREE_OF_THREE = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - - - X", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
    ("X - - - -", ALARM, RETAIN, ALARM, OK),
]
# The second table: 2 of 3 (M out of N).
TWO_OF_THREE = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - - X", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")


@pytest.mark.parametrize(
    ("m", "pattern", "treat", "expected"),
    [
        (m, row[0], treat, row[1 + i])
        for m, table in ((3, THREE_OF_THREE), (2, TWO_OF_THREE))
        for row in table
        for i, treat in enumerate(TREATMENTS)
    ],
)
def test_missing_data_tables_of_the_cloudwatch_guide(
    m: int, pattern: str, treat: str, expected: str
) -> None:
    # "ignore" keeps the current state: check with two different current states.
    for current in (OK, ALARM):
        want = current if expected == RETAIN else expected
        assert state_for(pattern, m, 3, treat, current) == want, (pattern, treat, current)


def test_m_of_n_needs_m_breaching_among_the_newest_n() -> None:
    assert state_for("X X 0 0 X", 2, 3, "notBreaching") == OK  # old X's outside the newest 3
    assert state_for("0 0 X 0 X", 2, 3, "notBreaching") == ALARM
    assert state_for("0 0 0 X X", 3, 3, "notBreaching") == OK


def test_real_datapoints_anywhere_in_the_evaluation_range_count_when_data_is_sparse() -> None:
    # Two breaching minutes 4 and 5 minutes ago, nothing since: with notBreaching the gap is
    # filled once, and both old datapoints still count (the evaluation-range behaviour).
    assert state_for("X X - - -", 2, 3, "notBreaching") == ALARM
    # One more quiet minute and the oldest leaves the range of 5.
    assert state_for("X X - - - -", 2, 3, "notBreaching") == OK


def test_publishing_delay_the_current_minute_is_not_visible() -> None:
    alarm = simple_alarm(1, 1, "notBreaching")
    store = MetricStore()
    store.put("NS", "M", {"FunctionName": FN}, 9.0, T0 + 10)
    assert evaluate(alarm, store, T0 + 59, OK).state == OK  # minute not over: not published
    assert evaluate(alarm, store, T0 + 60, OK).state == ALARM  # the minute ended


def test_p99_alarm_on_known_durations() -> None:
    props = {"ExtendedStatistic": "p99", "Statistic": None, "Threshold": 24000}
    alarm = simple_alarm(1, 1, "notBreaching", **props)
    store = MetricStore()
    # 100 invocations: 98 fast, 2 at the timeout. Nearest-rank p99 is the 99th value: 30 s.
    for n in range(100):
        duration = 30000.0 if n >= 98 else 50.0
        store.put("NS", "M", {"FunctionName": FN}, duration, T0 + 1)
    evaluation = evaluate(alarm, store, T0 + 60, OK)
    assert evaluation.datapoints == ((T0, 30000.0),)
    assert evaluation.state == ALARM
    # One slow invocation in 100 is below p99: the 99th value is fast.
    store = MetricStore()
    for n in range(100):
        store.put("NS", "M", {"FunctionName": FN}, 30000.0 if n == 0 else 50.0, T0 + 1)
    assert evaluate(alarm, store, T0 + 60, OK).datapoints == ((T0, 50.0),)


# The template's canary error rate alarm, as synthesized (see service/alarms.py).
ERROR_RATE: dict[str, Any] = {
    "AlarmName": "upload-ledger-dev-canary-error-rate",
    "AlarmDescription": "More than 5% failed. Runbook: https://example.com/runbooks/canary-error-rate.md",
    "AlarmActions": [{"Ref": "Topic"}],
    "OKActions": [{"Ref": "Topic"}],
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "DatapointsToAlarm": 2,
    "EvaluationPeriods": 3,
    "Threshold": 5,
    "TreatMissingData": "notBreaching",
    "Metrics": [
        {"Expression": "IF(errors >= 2, 100 * errors / invocations, 0)", "Id": "expr_1"},
        *(
            {
                "Id": metric_id,
                "MetricStat": {
                    "Metric": {
                        "Dimensions": [
                            {"Name": "FunctionName", "Value": {"Ref": "Fn"}},
                            {
                                "Name": "Resource",
                                "Value": {"Fn::Join": ["", [{"Ref": "Fn"}, ":live"]]},
                            },
                        ],
                        "MetricName": name,
                        "Namespace": "AWS/Lambda",
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            }
            for metric_id, name in (("errors", "Errors"), ("invocations", "Invocations"))
        ),
    ],
}
ALIAS = {"FunctionName": FN, "Resource": f"{FN}:live"}


def error_rate_series(minutes: list[tuple[int, int]]) -> dict[float, float]:
    store = MetricStore()
    for index, (invocations, errors) in enumerate(minutes):
        for n in range(invocations):
            at = T0 + 60 * index + 1
            store.put("AWS/Lambda", "Invocations", ALIAS, 1.0, at)
            store.put("AWS/Lambda", "Errors", ALIAS, float(n < errors), at)
    alarm = read_alarm("Rate", ERROR_RATE, resolve)
    return alarm.series(store, T0, T0 + 60 * len(minutes))


def test_the_templates_if_expression_by_hand() -> None:
    # (invocations, errors) per minute -> IF(errors >= 2, 100 * errors / invocations, 0)
    series = error_rate_series([(10, 1), (10, 2), (3, 3), (40, 2), (0, 0)])
    assert series == {T0: 0.0, T0 + 60: 20.0, T0 + 120: 100.0, T0 + 180: 5.0}  # no data: dropped


def test_error_rate_alarm_from_the_template_fires_on_two_bad_minutes_of_three() -> None:
    alarm = read_alarm("Rate", ERROR_RATE, resolve)
    store = MetricStore()
    for minute, (invocations, errors) in enumerate([(20, 0), (20, 4), (20, 0), (20, 3)]):
        for n in range(invocations):
            at = T0 + 60 * minute + 5
            store.put("AWS/Lambda", "Invocations", ALIAS, 1.0, at)
            store.put("AWS/Lambda", "Errors", ALIAS, float(n < errors), at)
    assert evaluate(alarm, store, T0 + 180, OK).state == OK  # 0%, 20%, 0%: one bad minute
    evaluation = evaluate(alarm, store, T0 + 240, OK)  # 20%, 0%, 15%: two of three
    assert evaluation.state == ALARM
    assert evaluation.reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [15.0 (")
    message = alarm_message(
        alarm,
        evaluation,
        old_state=OK,
        account="123456789012",
        region="eu-central-1",
        region_name="EU (Frankfurt)",
    )
    assert message["NewStateValue"] == ALARM
    assert message["OldStateValue"] == OK
    assert (
        "Runbook: https://example.com/runbooks/canary-error-rate.md" in message["AlarmDescription"]
    )
    assert message["AlarmActions"] == ["arn:aws:sns:eu-central-1:123456789012:alarms"]
    assert message["Trigger"]["Metrics"][0]["Expression"].startswith("IF(errors >= 2")
    assert (
        message["Trigger"]["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"][1]["Value"]
        == f"{FN}:live"
    )


def test_an_alarm_with_an_unsupported_expression_or_statistic_cannot_be_read() -> None:
    bad_math = {
        **ERROR_RATE,
        "Metrics": [
            {**ERROR_RATE["Metrics"][0], "Expression": "STDDEV(errors)"},
            *ERROR_RATE["Metrics"][1:],
        ],
    }
    with pytest.raises(UnsupportedAlarmError, match="STDDEV"):
        read_alarm("Rate", bad_math, resolve)
    with pytest.raises(UnsupportedAlarmError, match="tm90"):
        simple_alarm(1, 1, "notBreaching", ExtendedStatistic="tm90", Statistic=None)
    with pytest.raises(UnsupportedAlarmError, match="LessThanLowerOrGreaterThanUpperThreshold"):
        simple_alarm(
            1, 1, "notBreaching", ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold"
        )


def reason_for(values: list[float], m: int, n: int, current: str) -> tuple[str, str]:
    """(state, reason) after per-minute values written oldest first from T0 (14/11/23 22:14)."""
    store = MetricStore()
    for index, value in enumerate(values):
        store.put("NS", "M", {"FunctionName": FN}, value, T0 + 60 * index + 1)
    evaluation = evaluate(simple_alarm(m, n, "notBreaching"), store, T0 + 60 * len(values), current)
    return evaluation.state, evaluation.reason


def test_alarm_reason_lists_only_the_breaching_datapoints_newest_first() -> None:
    # CloudWatch's StateReason wording (alarm history), threshold 1.0, 2 of 3.
    assert reason_for([7.0, 0.0, 100.0], 2, 3, OK) == (
        ALARM,
        "Threshold Crossed: 2 out of the last 3 datapoints [100.0 (14/11/23 22:16:00), "
        "7.0 (14/11/23 22:14:00)] were greater than or equal to the threshold (1.0) "
        "(minimum 2 datapoints for OK -> ALARM transition).",
    )


def test_ok_reason_lists_only_the_datapoints_that_did_not_breach() -> None:
    # The defect: OK listed 100.0 among datapoints "not greater than or equal to" 1.0.
    # Leaving ALARM on 2 of 3 takes 3 - 2 + 1 = 2 non-breaching datapoints.
    assert reason_for([0.0, 0.0, 100.0], 2, 3, ALARM) == (
        OK,
        "Threshold Crossed: 2 out of the last 3 datapoints [0.0 (14/11/23 22:15:00), "
        "0.0 (14/11/23 22:14:00)] were not greater than or equal to the threshold (1.0) "
        "(minimum 2 datapoints for ALARM -> OK transition).",
    )
    assert reason_for([0.0], 1, 1, ALARM) == (
        OK,
        "Threshold Crossed: 1 out of the last 1 datapoints [0.0 (14/11/23 22:14:00)] was not "
        "greater than or equal to the threshold (1.0) "
        "(minimum 1 datapoint for ALARM -> OK transition).",
    )


@pytest.mark.parametrize("old", [OK, INSUFFICIENT_DATA])
def test_reason_names_the_real_old_state_of_the_transition(old: str) -> None:
    state, reason = reason_for([5.0], 1, 1, old)
    assert state == ALARM
    assert reason.endswith(f"(minimum 1 datapoint for {old} -> ALARM transition).")


def test_a_state_kept_names_no_transition() -> None:
    state, reason = reason_for([5.0], 1, 1, ALARM)
    assert state == ALARM
    assert "transition" not in reason
    assert reason.endswith("was greater than or equal to the threshold (1.0).")
