"""CloudWatch metric alarms, read from the template and evaluated as CloudWatch does.

Each `AWS::CloudWatch::Alarm` of the synthesized template becomes an :class:`AlarmDefinition`
(metric or metric math, statistic incl. percentiles, period, EvaluationPeriods,
DatapointsToAlarm, comparison, threshold, TreatMissingData, actions). :func:`evaluate`
computes its state at a moment from the :class:`~sandbox.metrics.MetricStore`:

- only complete periods are visible (the publishing delay: a minute's datapoint exists
  once the minute has ended);
- CloudWatch reads an *evaluation range* longer than EvaluationPeriods (N): here N + 2
  periods, the range the CloudWatch guide's tables use for N = 3;
- with at least N datapoints in the range, the newest N decide; with fewer, every real
  datapoint in the range counts and the gap up to N is filled per TreatMissingData
  (breaching, notBreaching); `missing` and `ignore` leave it unfilled, deciding on the
  real datapoints when they can (any non-breaching -> OK, M breaching -> ALARM), otherwise
  INSUFFICIENT_DATA (`missing`) or the current state (`ignore`). The one case the guide's
  tables decide by position (all datapoints breaching but fewer than M) goes, for
  `missing`, to ALARM only when they all lie before the newest N periods;
- M (DatapointsToAlarm) breaching out of the N evaluated -> ALARM, else OK.

Source: "Using Amazon CloudWatch alarms", sections "Evaluating an alarm" and "How alarm
state is evaluated when data is missing" (the tests reproduce both of its tables), and
"Using metric math" for the expressions (:mod:`sandbox.metric_math`).

Anything this evaluator does not model (anomaly detection, low-sample percentile
handling set to ignore, unknown statistics or functions) raises
:class:`UnsupportedAlarmError` when the alarm is read, never a silent OK.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.metric_math import Expression, ExpressionError, Points
from sandbox.metrics import MetricStore, statistic_function

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
BREACHING, NOT_BREACHING, MISSING, IGNORE = "breaching", "notBreaching", "missing", "ignore"
EXTRA_PERIODS_IN_RANGE = 2  # evaluation range = EvaluationPeriods + 2 (see module docstring)

_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
_MISSING_LABELS = {BREACHING: "Breaching", NOT_BREACHING: "NonBreaching"}

INTRINSICS = ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub")
# Turns a template value (a string or an intrinsic such as {"Ref": ...}) into a string.
Resolve = Callable[[Any, str], str]


class UnsupportedAlarmError(ValueError):
    """An alarm uses a feature the drill's evaluator does not model; says which."""


@dataclass(frozen=True)
class MetricStat:
    """One metric and how to aggregate it (GetMetricData's MetricStat)."""

    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    stat: str
    period: int

    def series(self, store: MetricStore, start: float, end: float) -> Points:
        points = store.statistic(
            self.namespace, self.metric_name, self.dimensions, self.stat, self.period, start, end
        )
        return dict(points)


@dataclass(frozen=True)
class MetricQuery:
    """An entry of an alarm's `Metrics`: a metric or an expression, by id."""

    id: str
    metric: MetricStat | None = None
    expression: Expression | None = None
    label: str = ""
    return_data: bool = True


@dataclass(frozen=True)
class AlarmDefinition:
    """An AWS::CloudWatch::Alarm as the template defines it (intrinsics resolved)."""

    logical_id: str
    name: str
    description: str
    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    period: int
    queries: tuple[MetricQuery, ...]
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)  # resolved, for the message

    def series(self, store: MetricStore, start: float, end: float) -> Points:
        """The alarm's datapoints (the query with ReturnData) for periods in [start, end)."""
        values: dict[str, Points] = {}
        periods = [start + n * self.period for n in range(int((end - start) // self.period))]
        for query in self.queries:
            if query.metric is not None:
                values[query.id] = query.metric.series(store, start, end)
        for query in self.queries:  # expressions may read each other: resolve in order
            if query.expression is not None:
                values[query.id] = query.expression.evaluate_alarm(values, periods)
        (returned,) = [q for q in self.queries if q.return_data]
        return values[returned.id]

    def breaches(self, value: float) -> bool:
        return _COMPARISONS[self.comparison][0](value, self.threshold)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating an alarm once."""

    state: str
    reason: str
    evaluated_at: float
    datapoints: tuple[tuple[float, float], ...]  # (period start, value) in the range, newest first
    reason_data: dict[str, Any] = field(default_factory=dict)


def read_alarm(logical_id: str, properties: Mapping[str, Any], resolve: Resolve) -> AlarmDefinition:
    """An alarm from its template properties; UnsupportedAlarmError for what isn't modelled."""
    name = resolve(properties.get("AlarmName", logical_id), f"{logical_id}.AlarmName")
    where = f"alarm {name}"
    comparison = str(properties.get("ComparisonOperator"))
    if comparison not in _COMPARISONS:
        raise UnsupportedAlarmError(f"{where}: ComparisonOperator {comparison} is not supported")
    if properties.get("EvaluateLowSampleCountPercentile", "evaluate") != "evaluate":
        raise UnsupportedAlarmError(
            f"{where}: EvaluateLowSampleCountPercentile=ignore is not modelled by the drill"
        )
    queries = _queries(properties, resolve, where)
    periods = {q.metric.period for q in queries if q.metric is not None}
    if len(periods) != 1:
        raise UnsupportedAlarmError(f"{where}: its metrics must share one period, not {periods}")
    evaluation_periods = int(properties["EvaluationPeriods"])
    resolved = resolve_intrinsics(dict(properties), resolve, where)
    return AlarmDefinition(
        logical_id=logical_id,
        name=name,
        description=str(resolved.get("AlarmDescription", "")),
        comparison=comparison,
        threshold=float(properties["Threshold"]),
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=int(properties.get("DatapointsToAlarm", evaluation_periods)),
        treat_missing_data=str(properties.get("TreatMissingData", MISSING)),
        period=periods.pop(),
        queries=queries,
        alarm_actions=tuple(resolved.get("AlarmActions", ())),
        ok_actions=tuple(resolved.get("OKActions", ())),
        insufficient_data_actions=tuple(resolved.get("InsufficientDataActions", ())),
        properties=resolved,
    )


def _queries(
    properties: Mapping[str, Any], resolve: Resolve, where: str
) -> tuple[MetricQuery, ...]:
    if "Metrics" not in properties:
        stat = properties.get("ExtendedStatistic") or properties.get("Statistic")
        metric = _metric_stat(properties, str(stat), properties.get("Period"), resolve, where)
        return (MetricQuery(id="m1", metric=metric),)
    queries = []
    for entry in properties["Metrics"]:
        query_id = str(entry["Id"])
        if "Expression" in entry:
            try:
                expression = Expression.for_alarm(str(entry["Expression"]))
            except ExpressionError as error:
                raise UnsupportedAlarmError(f"{where}: {error}") from error
            queries.append(
                MetricQuery(
                    id=query_id,
                    expression=expression,
                    label=str(entry.get("Label", "")),
                    return_data=bool(entry.get("ReturnData", True)),
                )
            )
        elif "MetricStat" in entry:
            stat = entry["MetricStat"]
            metric = _metric_stat(stat["Metric"], stat["Stat"], stat.get("Period"), resolve, where)
            queries.append(
                MetricQuery(
                    id=query_id, metric=metric, return_data=bool(entry.get("ReturnData", True))
                )
            )
        else:
            raise UnsupportedAlarmError(
                f"{where}: metric {query_id} has neither Expression nor MetricStat"
            )
    if sum(q.return_data for q in queries) != 1:
        raise UnsupportedAlarmError(f"{where}: exactly one of its Metrics must have ReturnData")
    return tuple(queries)


def _metric_stat(
    metric: Mapping[str, Any], stat: str, period: Any, resolve: Resolve, where: str
) -> MetricStat:
    try:
        statistic_function(stat)
    except ValueError as error:
        raise UnsupportedAlarmError(f"{where}: {error}") from error
    dimensions = {
        str(d["Name"]): resolve(d["Value"], f"{where} dimension {d['Name']}")
        for d in metric.get("Dimensions", [])
    }
    return MetricStat(
        namespace=str(metric["Namespace"]),
        metric_name=str(metric["MetricName"]),
        dimensions=dimensions,
        stat=stat,
        period=int(period),
    )


def resolve_intrinsics(value: Any, resolve: Resolve, where: str) -> Any:
    """Every intrinsic inside a template value resolved (for the message and actions)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in INTRINSICS:
            return resolve(value, where)
        return {k: resolve_intrinsics(v, resolve, where) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_intrinsics(v, resolve, where) for v in value]
    return value


def evaluate(
    alarm: AlarmDefinition, store: MetricStore, now: float, current_state: str
) -> Evaluation:
    """The alarm's state at `now` (epoch seconds), from complete periods only."""
    end = now // alarm.period * alarm.period
    start = end - (alarm.evaluation_periods + EXTRA_PERIODS_IN_RANGE) * alarm.period
    series = alarm.series(store, start, end)
    newest_first = tuple(
        sorted(((t, v) for t, v in series.items() if start <= t < end), reverse=True)
    )
    state, reason = decide(
        alarm,
        newest_first,
        window_start=end - alarm.evaluation_periods * alarm.period,
        current_state=current_state,
    )
    reason_data = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(start),
        "period": alarm.period,
        "recentDatapoints": [v for _, v in newest_first[: alarm.evaluation_periods]][::-1],
        "threshold": alarm.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(t), "value": v} for t, v in newest_first[: alarm.evaluation_periods]
        ],
    }
    return Evaluation(state, reason, now, newest_first, reason_data)


def decide(
    alarm: AlarmDefinition,
    newest_first: tuple[tuple[float, float], ...],
    *,
    window_start: float,
    current_state: str,
) -> tuple[str, str]:
    """(state, NewStateReason) from the datapoints of the evaluation range, newest first."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    if len(newest_first) >= n:
        evaluated = newest_first[:n]
        breaching = [p for p in evaluated if alarm.breaches(p[1])]
        return _threshold_state(alarm, evaluated, breaching, current_state=current_state)
    gap = n - len(newest_first)
    breaching = [p for p in newest_first if alarm.breaches(p[1])]
    treatment = alarm.treat_missing_data
    if treatment not in (BREACHING, NOT_BREACHING):
        return _decide_unfilled(alarm, newest_first, breaching, window_start, current_state)
    filled = gap if treatment == BREACHING else 0
    if newest_first:
        return _threshold_state(
            alarm, newest_first, breaching, current_state=current_state, filled=filled, gap=gap
        )
    return ALARM if filled >= m else OK, (
        f"Threshold Crossed: no datapoints were received for {n} period{_s(n)} and {n} "
        f"missing datapoint{_s(n)} {_were(n)} treated as [{_MISSING_LABELS[treatment]}]."
    )


def _decide_unfilled(
    alarm: AlarmDefinition,
    newest_first: tuple[tuple[float, float], ...],
    breaching: list[tuple[float, float]],
    window_start: float,
    current_state: str,
) -> tuple[str, str]:
    """TreatMissingData missing or ignore, with fewer datapoints than EvaluationPeriods."""
    treatment, n, m = alarm.treat_missing_data, alarm.evaluation_periods, alarm.datapoints_to_alarm
    if treatment not in (MISSING, IGNORE):
        raise UnsupportedAlarmError(f"alarm {alarm.name}: TreatMissingData {treatment} is unknown")
    if newest_first and (len(breaching) >= m or len(breaching) < len(newest_first)):
        return _threshold_state(alarm, newest_first, breaching, current_state=current_state)
    # Every datapoint breaches but fewer than M: the guide's tables say ALARM (for
    # `missing`; `ignore` keeps its state) when they all lie before the newest N periods.
    if newest_first and treatment == MISSING and all(t < window_start for t, _ in newest_first):
        return _threshold_state(
            alarm, newest_first, breaching, current_state=current_state, filled=m - len(breaching)
        )
    unknown = INSUFFICIENT_DATA if treatment == MISSING else current_state
    return unknown, f"Insufficient Data: {n} datapoint{_s(n)} {_were(n)} unknown."


def _threshold_state(
    alarm: AlarmDefinition,
    evaluated: tuple[tuple[float, float], ...],
    breaching: list[tuple[float, float]],
    *,
    current_state: str,
    filled: int = 0,
    gap: int = 0,
) -> tuple[str, str]:
    """ALARM when breaching datapoints (real + `filled`) reach M, else OK; with the reason.

    The reason is worded as CloudWatch's StateReason (see its alarm history):
    "Threshold Crossed: 2 out of the last 3 datapoints [100.0 (30/11/26 13:43:00), ...] were
    greater than or equal to the threshold (5.0) (minimum 2 datapoints for OK -> ALARM
    transition)." It lists only the datapoints that decided the new state (the breaching ones
    for ALARM, the others, "were not ...", for OK), newest first. Leaving ALARM takes
    N - M + 1 non-breaching datapoints. The transition names `current_state`, the real old
    state; a re-evaluation that keeps the state has no transition to name.
    """
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    missing = ""
    if gap:
        label = _MISSING_LABELS.get(alarm.treat_missing_data, "Missing")
        missing = f" and {gap} missing datapoint{_s(gap)} {_were(gap)} treated as [{label}]"
    if len(breaching) + filled >= m:
        state, listed, count, minimum, negation = ALARM, breaching, len(breaching) + filled, m, ""
    else:
        listed = [p for p in evaluated if not alarm.breaches(p[1])]
        filled_calm = gap if alarm.treat_missing_data == NOT_BREACHING else 0
        state, count, minimum, negation = OK, len(listed) + filled_calm, n - m + 1, "not "
    reason = (
        f"Threshold Crossed: {count} out of the last {n} datapoints [{_points(listed)}] "
        f"{_were(count)} {negation}{_COMPARISONS[alarm.comparison][1]} "
        f"the threshold ({alarm.threshold!r}){missing}"
    )
    if current_state != state:
        reason += (
            f" (minimum {minimum} datapoint{_s(minimum)} for {current_state} -> {state} transition)"
        )
    return state, reason + "."


def _points(points: list[tuple[float, float]] | tuple[tuple[float, float], ...]) -> str:
    return ", ".join(
        f"{value!r} ({datetime.fromtimestamp(stamp, UTC):%d/%m/%y %H:%M:%S})"
        for stamp, value in points
    )


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def alarm_message(
    alarm: AlarmDefinition,
    evaluation: Evaluation,
    *,
    old_state: str,
    account: str,
    region: str,
    region_name: str,
) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an SNS topic for a state change.

    Shape as CloudWatch sends it to SNS (AlarmName, AlarmDescription, AWSAccountId,
    NewStateValue, NewStateReason, StateChangeTime, Region, AlarmArn, OldStateValue,
    the actions and the Trigger describing the metric or metric math).
    """
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _iso(evaluation.evaluated_at).replace("+0000", "Z"),
        "NewStateValue": evaluation.state,
        "NewStateReason": evaluation.reason,
        "StateChangeTime": _iso(evaluation.evaluated_at),
        "Region": region_name,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm.name}",
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": _trigger(alarm),
    }


def _trigger(alarm: AlarmDefinition) -> dict[str, Any]:
    common = {
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm,
        "ComparisonOperator": alarm.comparison,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data,
        "EvaluateLowSampleCountPercentile": "",
    }
    if len(alarm.queries) == 1 and alarm.queries[0].metric is not None:
        metric = alarm.queries[0].metric
        extended = metric.stat.startswith("p")
        return {
            "MetricName": metric.metric_name,
            "Namespace": metric.namespace,
            "StatisticType": "ExtendedStatistic" if extended else "Statistic",
            ("ExtendedStatistic" if extended else "Statistic"): (
                metric.stat if extended else metric.stat.upper()
            ),
            "Unit": None,
            "Dimensions": [{"value": v, "name": k} for k, v in metric.dimensions.items()],
            **common,
        }
    return {"Metrics": json.loads(json.dumps(alarm.properties.get("Metrics", []))), **common}
