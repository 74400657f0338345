"""A metric widget's lines: its `metrics` rows read from the store, its expressions evaluated.

Row forms (dashboard body reference, "metrics" of a metric widget):
`[Namespace, MetricName, DimName, DimValue, ..., {options}]`, `[{"expression": ...}]`,
`"."` (same as the row above at that position) and `"..."` (the row above, with its last
elements replaced by the ones that follow). Options: `id`, `label`, `stat`, `period`,
`visible`. Defaults as CloudWatch: stat Average, the widget's period, else 300 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.metric_math import (
    Context,
    Expression,
    ExpressionError,
    MetricSource,
    Series,
    Window,
    as_series_list,
    fetch,
    render_label,
    search,
)

DEFAULT_STAT = "Average"
DEFAULT_PERIOD = 300


@dataclass(frozen=True)
class MetricRow:
    """One stored metric a widget graphs (or uses in an expression)."""

    id: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    stat: str
    period: int
    label: str
    visible: bool


@dataclass(frozen=True)
class ExpressionRow:
    """One metric math expression of a widget."""

    id: str
    expression: str
    period: int
    label: str
    visible: bool


Row = MetricRow | ExpressionRow


@dataclass(frozen=True)
class Line:
    """What a graph draws: a label and (timestamp, value) points, sorted by time."""

    label: str
    points: list[tuple[float, float]]


def parse_rows(properties: Mapping[str, Any]) -> list[Row]:
    """The widget's rows with CloudWatch's defaults applied; ExpressionError if malformed."""
    default_stat = str(properties.get("stat", DEFAULT_STAT))
    default_period = int(properties.get("period", DEFAULT_PERIOD))
    rows: list[Row] = []
    previous: list[Any] = []
    for index, raw in enumerate(properties.get("metrics", [])):
        options: dict[str, Any] = raw[-1] if raw and isinstance(raw[-1], dict) else {}
        items = list(raw[:-1] if options else raw)
        period = int(options.get("period", default_period))
        visible = bool(options.get("visible", True))
        row_id = str(options.get("id", f"m{index + 1}"))
        if "expression" in options:
            expression = str(options["expression"])
            label = str(options.get("label", row_id))
            rows.append(ExpressionRow(row_id, expression, period, label, visible))
            continue
        items = _expand_shorthand(items, previous)
        previous = items
        if len(items) < 2 or len(items) % 2:
            raise ExpressionError(
                f"metric row {index + 1} {raw!r} is not [Namespace, MetricName, "
                "DimName, DimValue, ..., {options}]"
            )
        namespace, name = str(items[0]), str(items[1])
        dimensions = {str(items[i]): str(items[i + 1]) for i in range(2, len(items), 2)}
        stat = str(options.get("stat", default_stat))
        label = str(options.get("label", name))
        rows.append(MetricRow(row_id, namespace, name, dimensions, stat, period, label, visible))
    return rows


def _expand_shorthand(items: list[Any], previous: list[Any]) -> list[Any]:
    if items and items[0] == "...":
        rest = items[1:]
        return previous[: len(previous) - len(rest)] + rest
    return [
        previous[i] if item == "." and i < len(previous) else item for i, item in enumerate(items)
    ]


def widget_lines(properties: Mapping[str, Any], store: MetricSource, window: Window) -> list[Line]:
    """Every visible line of a metric widget; ExpressionError for what can't be evaluated."""
    rows = parse_rows(properties)
    series: dict[str, Series] = {}
    for row in rows:
        if isinstance(row, MetricRow):
            fetched = fetch(
                store,
                row.namespace,
                row.metric_name,
                row.dimensions,
                stat=row.stat,
                period=row.period,
                window=window,
            )
            fetched.label = row.label
            series[row.id] = fetched
    lines: list[Line] = []
    for row in rows:
        if isinstance(row, ExpressionRow):
            evaluated = _evaluate(row, series, store, window)
            if len(evaluated) == 1:
                series[row.id] = evaluated[0]
            if row.visible:
                lines += [_line(row.label, s) for s in evaluated]
        elif row.visible:
            lines.append(_line(row.label, series[row.id]))
    return lines


def _evaluate(
    row: ExpressionRow, series: Mapping[str, Series], store: MetricSource, window: Window
) -> list[Series]:
    def run_search(query: str, stat: str, period: int) -> list[Series]:
        return search(store, query, stat, period, window)

    try:
        value = Expression(row.expression).evaluate(Context(series, window, run_search))
    except ExpressionError as error:
        raise ExpressionError(f"expression {row.id}: {error}") from error
    if isinstance(value, float):
        raise ExpressionError(
            f"expression {row.id} ({row.expression}) gives a single number, not a series"
        )
    return as_series_list(value)


def _line(label: str, series: Series) -> Line:
    return Line(render_label(label, series), sorted(series.points.items()))
