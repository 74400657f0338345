"""Metric math, the one evaluator of the alarms and the console, against hand-computed series.

Rules: "Using metric math", CloudWatch User Guide. The IF tables are the guide's.
"""

from __future__ import annotations

import math

import pytest

from sandbox.metric_math import (
    Context,
    Expression,
    ExpressionError,
    Series,
    Window,
    parse_search,
    render_label,
)

WINDOW = Window(0.0, 300.0)


def _evaluate(expression: str, **series: Series) -> object:
    def no_search(query: str, stat: str, period: int) -> list[Series]:
        raise AssertionError("no SEARCH expected")

    return Expression(expression).evaluate(Context(series, WINDOW, no_search))


def _series(points: dict[float, float], period: int = 60) -> Series:
    return Series(points, period, label="m")


# The guide's IF tables: metric1 [1, 1, 0, 0, -], metric2 [30, -, 0, 0, 30],
# metric3 [0, 0, 20, -, 20]
M1 = {0.0: 1.0, 1.0: 1.0, 2.0: 0.0, 3.0: 0.0}
M2 = {0.0: 30.0, 2.0: 0.0, 3.0: 0.0, 4.0: 30.0}
M3 = {0.0: 0.0, 1.0: 0.0, 2.0: 20.0, 4.0: 20.0}
PERIODS = [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("IF(metric1, metric2, metric3)", {0.0: 30.0, 1.0: 0.0, 2.0: 20.0}),
        ("IF(metric1, 5, metric3)", {0.0: 5.0, 1.0: 5.0, 2.0: 20.0}),
        ("IF(metric1, metric2, 5)", {0.0: 30.0, 1.0: 0.0, 2.0: 5.0, 3.0: 5.0}),
        ("IF(metric1, metric2)", {0.0: 30.0, 1.0: 0.0}),
        ("metric1 < metric2", {0.0: 1.0, 1.0: 0.0, 2.0: 0.0, 3.0: 0.0, 4.0: 1.0}),
        ("metric2 + metric3", {0.0: 30.0, 1.0: 0.0, 2.0: 20.0, 3.0: 0.0, 4.0: 50.0}),
        ("metric3 / metric2", {0.0: 0.0, 4.0: 20.0 / 30.0}),  # x/0 dropped, missing is 0
        ("FILL(metric2, 7)", {0.0: 30.0, 1.0: 7.0, 2.0: 0.0, 3.0: 0.0, 4.0: 30.0}),
        ("-metric2 * 2 ^ 2", {0.0: -120.0, 2.0: 0.0, 3.0: 0.0, 4.0: -120.0}),
        ("metric1 > 0 AND metric3 > 0", {0.0: 0.0, 1.0: 0.0, 2.0: 0.0, 3.0: 0.0, 4.0: 0.0}),
        ("metric1 > 0 || metric3 > 0", {0.0: 1.0, 1.0: 1.0, 2.0: 1.0, 3.0: 0.0, 4.0: 1.0}),
        ("SUM([metric2, metric3])", {0.0: 30.0, 1.0: 0.0, 2.0: 20.0, 3.0: 0.0, 4.0: 50.0}),
    ],
)
def test_metric_math_rules_for_an_alarm(expression: str, expected: dict[float, float]) -> None:
    values = {"metric1": M1, "metric2": M2, "metric3": M3}
    assert Expression.for_alarm(expression).evaluate_alarm(values, PERIODS) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("ANOMALY_DETECTION_BAND(m1)", "ANOMALY_DETECTION_BAND"),
        ("RATE(m1)", "RATE"),
        ("m1 +", "ends early"),
        ("m1 $ 2", "can't read"),
        ("5", "one time series"),
        ("AVG(m1)", "one time series"),
        ("SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\"', 'Sum', 60)", "SEARCH"),
        ("SUM(SEARCH('{AWS/Lambda,FunctionName}', 'Sum', 60))", "an alarm can't use SEARCH"),
    ],
)
def test_what_an_alarm_cannot_evaluate_is_a_clear_error(expression: str, reason: str) -> None:
    with pytest.raises(ExpressionError, match=f"metric math .*{reason}"):
        Expression.for_alarm(expression).evaluate_alarm({"m1": {0.0: 1.0}}, [0.0])


def test_rate_divides_each_point_by_the_period() -> None:
    volume = _series({0.0: 120.0, 60.0: 30.0})
    result = _evaluate("(volume / PERIOD(volume))", volume=volume)
    assert isinstance(result, Series)
    assert result.points == {0.0: 2.0, 60.0: 0.5}


def test_operations_between_series_count_a_missing_value_as_zero() -> None:
    a = _series({0.0: 1.0, 60.0: 2.0, 120.0: 3.0})
    b = _series({60.0: 10.0, 120.0: 20.0, 180.0: 30.0})
    result = _evaluate("a+b", a=a, b=b)
    assert isinstance(result, Series)
    assert result.points == {0.0: 1.0, 60.0: 12.0, 120.0: 23.0, 180.0: 30.0}


def test_precedence_and_parentheses_follow_arithmetic() -> None:
    assert _evaluate("1 + 2 * 3") == 7.0
    assert _evaluate("(1 + 2) * 3") == 9.0
    assert _evaluate("-2 * 3 - 1") == -7.0
    assert _evaluate("8 / 2 / 2") == 2.0
    assert _evaluate("-2 ^ 2") == -4.0
    assert _evaluate("2 ^ 3 ^ 2") == 512.0
    assert _evaluate("1 < 2 AND 3 > 4 OR 1") == 1.0


def test_time_to_drain_as_the_sqs_widget_computes_it() -> None:
    visible = _series({0.0: 10.0, 60.0: 4.0})
    deleted = _series({0.0: 5.0, 60.0: 2.0})
    incoming = _series({0.0: 3.0, 60.0: 2.0})
    result = _evaluate(
        "(visibleMessages / (consumptionVolume - incomingVolume)) * (PERIOD(consumptionVolume))",
        visibleMessages=visible,
        consumptionVolume=deleted,
        incomingVolume=incoming,
    )
    assert isinstance(result, Series)
    # 10 / (5 - 3) * 60 = 300; at 60 s the denominator is 0: no datapoint, as CloudWatch.
    assert result.points == {0.0: 300.0}
    partial = _evaluate("a / b", a=_series({0.0: 6.0, 60.0: 1.0}), b=_series({0.0: 3.0}))
    assert isinstance(partial, Series)
    assert partial.points == {0.0: 2.0}  # 1 / (missing as 0): dropped


def test_fill_puts_the_value_in_every_empty_period_of_the_window() -> None:
    throttles = _series({120.0: 4.0})
    result = _evaluate("FILL(readThrottles,0)", readThrottles=throttles)
    assert isinstance(result, Series)
    assert result.points == {0.0: 0.0, 60.0: 0.0, 120.0: 4.0, 180.0: 0.0, 240.0: 0.0}


def test_fill_repeat_carries_the_last_value_forward() -> None:
    result = _evaluate("FILL(m, REPEAT)", m=_series({60.0: 5.0}))
    assert isinstance(result, Series)
    assert result.points == {60.0: 5.0, 120.0: 5.0, 180.0: 5.0, 240.0: 5.0}


def test_if_chooses_per_point_and_drops_points_without_a_false_value() -> None:
    errors = _series({0.0: 1.0, 60.0: 3.0})
    invocations = _series({0.0: 10.0, 60.0: 30.0})
    rate = _evaluate(
        "IF(errors >= 2, 100 * errors / invocations, 0)", errors=errors, invocations=invocations
    )
    assert isinstance(rate, Series)
    assert rate.points == {0.0: 0.0, 60.0: 10.0}
    only_true = _evaluate("IF(errors >= 2, errors)", errors=errors)
    assert isinstance(only_true, Series)
    assert only_true.points == {60.0: 3.0}


def test_functions_of_one_series_are_numbers_of_several_a_series() -> None:
    a = _series({0.0: 1.0, 60.0: 5.0})
    b = _series({0.0: 2.0})
    assert _evaluate("AVG(a)", a=a) == 3.0
    assert _evaluate("MAX(a)", a=a) == 5.0
    total = _evaluate("SUM([a, b])", a=a, b=b)
    assert isinstance(total, Series)
    assert total.points == {0.0: 3.0, 60.0: 5.0}
    every = _evaluate("SUM(METRICS())", a=a, b=b)
    assert isinstance(every, Series)
    assert every.points == {0.0: 3.0, 60.0: 5.0}


def test_unsupported_function_is_a_clear_error_naming_it() -> None:
    with pytest.raises(ExpressionError, match=r"ANOMALY_DETECTION_BAND\(\) is not supported"):
        _evaluate("ANOMALY_DETECTION_BAND(m, 2)", m=_series({0.0: 1.0}))


def test_unknown_metric_id_is_a_clear_error_listing_the_known_ones() -> None:
    with pytest.raises(ExpressionError, match=r"'missing' is not a metric id of this request \(m"):
        _evaluate("missing * 2", m=_series({0.0: 1.0}))


@pytest.mark.parametrize("expression", ["m +", "(m", "m m", "m $ 2", "PERIOD(m", "", "'text'"])
def test_malformed_expressions_are_errors(expression: str) -> None:
    with pytest.raises(ExpressionError, match="metric math"):
        _evaluate(expression, m=_series({0.0: 1.0}))


def test_search_schema_matches_exact_dimension_names_and_terms() -> None:
    query = parse_search(
        '{AWS/Lambda,ExecutedVersion,FunctionName,Resource} MetricName="Errors" '
        'FunctionName="fn" Resource="fn:live"'
    )
    per_version = {"FunctionName": "fn", "Resource": "fn:live", "ExecutedVersion": "2"}
    assert query.matches("AWS/Lambda", "Errors", per_version)
    assert not query.matches("AWS/Lambda", "Invocations", per_version)
    assert not query.matches("AWS/Lambda", "Errors", {"FunctionName": "fn", "Resource": "fn:live"})
    quoted = parse_search(
        '{"AWS/DynamoDB","TableName","Operation"} "TableName"="t" '
        'MetricName="SuccessfulRequestLatency"'
    )
    assert quoted.matches(
        "AWS/DynamoDB", "SuccessfulRequestLatency", {"TableName": "t", "Operation": "PutItem"}
    )


def test_search_free_text_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="not supported"):
        parse_search("{AWS/Lambda,FunctionName} Errors OR Throttles")


def test_dynamic_labels_read_dimensions_and_aggregates() -> None:
    series = Series(
        {0.0: 1.0, 60.0: 3.0},
        60,
        metric_name="Errors",
        dimensions={"ExecutedVersion": "2"},
    )
    assert render_label("version ${PROP('Dim.ExecutedVersion')}", series) == "version 2"
    assert render_label("TPS (avg: ${AVG}, max: ${MAX})", series) == "TPS (avg: 2, max: 3)"
    assert render_label("${PROP('MetricName')}", series) == "Errors"


def test_a_constant_expression_of_nothing_is_nan_not_a_crash() -> None:
    result = _evaluate("1 / 0")
    assert isinstance(result, float)
    assert math.isnan(result)
