"""CloudWatch metric math over the sandbox's metric store, for the dashboard's graphs.

Covers what dashboard bodies use: arithmetic (+ - * /, unary minus, parentheses) between
series and scalars, comparisons, ``IF``, ``PERIOD``, ``FILL`` (a value or ``REPEAT``),
``SUM``/``AVG``/``MIN``/``MAX``, ``METRICS()`` and ``SEARCH``. Anything else raises
:class:`ExpressionError` naming what is missing: a graph is never silently wrong.

Semantics follow "Using metric math" in the CloudWatch User Guide
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html):
an operation between two series covers the timestamps of either, a value missing in one
counting as 0 (as the alarms' evaluator, sandbox.metric_math, does); a scalar applies to
every point; a division by zero yields no datapoint; a function of one series (``AVG(m1)``)
is a scalar, of several series a series.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Union

# period start (epoch seconds) -> value
Points = dict[float, float]


class ExpressionError(ValueError):
    """A metric math expression the console can't evaluate (unsupported or malformed)."""


class MetricSource(Protocol):
    """What the expressions read: the sandbox's metric store (sandbox.metrics.MetricStore)."""

    def statistic(  # noqa: PLR0917 - GetMetricStatistics' parameters, as the store takes them
        self,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str],
        stat: str,
        period: int,
        start: float,
        end: float,
    ) -> list[tuple[float, float]]: ...

    def metrics(self) -> list[tuple[str, str, dict[str, str]]]: ...


@dataclass
class Series:
    """One time series: its points at `period` seconds, and what it is (for labels)."""

    points: Points
    period: int
    label: str = ""
    namespace: str = ""
    metric_name: str = ""
    dimensions: dict[str, str] = field(default_factory=dict)
    stat: str = ""


Value = Union[float, Series, list[Series]]  # noqa: UP007 - a runtime alias mypy reads


@dataclass(frozen=True)
class Window:
    """The time range a graph shows, in epoch seconds."""

    start: float
    end: float

    def grid(self, period: int) -> list[float]:
        """Every period start in the window (where FILL puts its values)."""
        first = self.start - self.start % period
        return [float(t) for t in range(int(first), int(self.end), period)]


# Tokens: numbers, names, quoted strings, two-character operators before one-character ones.
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>>=|<=|==|!=|[-+*/^(),<>\[\]]))"
)
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def _as_number(compare: Callable[[float, float], bool]) -> Callable[[float, float], float]:
    """A comparison giving 1 or 0, as metric math's comparison operators do."""
    return lambda a, b: float(compare(a, b))


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


_ARITHMETIC: dict[str, Callable[[float, float], float | None]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "^": operator.pow,
}


def tokenize(expression: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; raises ExpressionError at the first character it can't read."""
    tokens = []
    position = 0
    text = expression.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"can't read {expression!r} at position {position}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class Evaluator:
    """Evaluates one expression of a graph.

    `series` maps the graph's metric ids (``m1``, ``errors``...) to their series;
    `search` answers SEARCH(query, stat, period) (see :func:`search`).
    """

    def __init__(
        self,
        series: Mapping[str, Series],
        window: Window,
        search: Callable[[str, str, int], list[Series]],
    ) -> None:
        self._series = series
        self._window = window
        self._run_search = search
        self._tokens: list[tuple[str, str]] = []
        self._at = 0

    def evaluate(self, expression: str) -> Value:
        self._tokens = tokenize(expression)
        self._at = 0
        if not self._tokens:
            raise ExpressionError("empty expression")
        value = self._comparison()
        if self._at != len(self._tokens):
            raise ExpressionError(f"unexpected {self._tokens[self._at][1]!r} in {expression!r}")
        return value

    # Recursive descent, loosest binding first.
    def _peek(self) -> str:
        return self._tokens[self._at][1] if self._at < len(self._tokens) else ""

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self._at >= len(self._tokens):
            raise ExpressionError(f"expression ends early (expected {expected or 'more'})")
        token = self._tokens[self._at]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, found {token[1]!r}")
        self._at += 1
        return token

    def _comparison(self) -> Value:
        left = self._sum()
        while self._peek() in _COMPARISONS:
            symbol = self._take()[1]
            left = combine(left, self._sum(), _as_number(_COMPARISONS[symbol]))
        return left

    def _sum(self) -> Value:
        left = self._product()
        while self._peek() in ("+", "-"):
            apply = _ARITHMETIC[self._take()[1]]
            left = combine(left, self._product(), apply)
        return left

    def _product(self) -> Value:
        left = self._unary()
        while self._peek() in ("*", "/"):
            apply = _ARITHMETIC[self._take()[1]]
            left = combine(left, self._unary(), apply)
        return left

    def _unary(self) -> Value:
        if self._peek() == "-":
            self._take()
            return combine(-1.0, self._power(), operator.mul)
        return self._power()

    def _power(self) -> Value:
        base = self._atom()
        if self._peek() == "^":
            self._take()
            return combine(base, self._unary(), operator.pow)
        return base

    def _atom(self) -> Value:
        kind, text = self._take()
        if kind == "number":
            return float(text)
        if text == "(":
            value = self._comparison()
            self._take(")")
            return value
        if text == "[":
            return self._array()
        if kind == "name" and self._peek() == "(":
            return self._call(text)
        if kind == "name":
            if text not in self._series:
                known = ", ".join(sorted(self._series)) or "none"
                raise ExpressionError(f"{text!r} is not a metric id of this graph ({known})")
            return self._series[text]
        raise ExpressionError(f"unexpected {text!r}")

    def _array(self) -> list[Series]:
        items: list[Series] = []
        while self._peek() != "]":
            items += as_series_list(self._comparison())
            if self._peek() == ",":
                self._take()
        self._take("]")
        return items

    def _arguments(self) -> list[Value | str]:
        self._take("(")
        arguments: list[Value | str] = []
        while self._peek() != ")":
            kind, text = self._tokens[self._at] if self._at < len(self._tokens) else ("", "")
            if kind == "string":
                self._take()
                arguments.append(_unquote(text))
            elif kind == "name" and text in ("REPEAT", "LINEAR"):
                self._take()
                arguments.append(text)
            else:
                arguments.append(self._comparison())
            if self._peek() == ",":
                self._take()
        self._take(")")
        return arguments

    def _call(self, name: str) -> Value:
        arguments = self._arguments()
        function = _FUNCTIONS.get(name.upper())
        if function is None:
            raise ExpressionError(
                f"metric math function {name}() is not supported by the sandbox console "
                f"(supported: {', '.join(sorted(_FUNCTIONS))})"
            )
        return function(self, arguments)

    # Functions
    def _search(self, arguments: list[Value | str]) -> Value:
        if len(arguments) != 3:
            raise ExpressionError("SEARCH takes ('query', 'stat', period)")
        query, stat, period = arguments
        if not (isinstance(query, str) and isinstance(stat, str) and isinstance(period, float)):
            raise ExpressionError("SEARCH takes ('query', 'stat', period)")
        return self._run_search(query, stat, int(period))

    def _period(self, arguments: list[Value | str]) -> Value:
        (value,) = _expect(arguments, 1, "PERIOD")
        series = as_series_list(value)
        if not series:
            raise ExpressionError("PERIOD() needs a metric")
        return float(series[0].period)

    def _fill(self, arguments: list[Value | str]) -> Value:
        value, filler = _expect(arguments, 2, "FILL")
        return _map_series(value, lambda s: fill(s, filler, self._window))

    def _if(self, arguments: list[Value | str]) -> Value:
        if len(arguments) not in (2, 3):
            raise ExpressionError("IF takes (condition, trueValue[, falseValue])")
        condition, when_true = arguments[0], arguments[1]
        when_false: Value | str | None = arguments[2] if len(arguments) == 3 else None
        if any(isinstance(a, str) for a in (condition, when_true, when_false)):
            raise ExpressionError("IF takes metrics or numbers, not strings")
        return if_(condition, when_true, when_false)  # type: ignore[arg-type]

    def _metrics(self, arguments: list[Value | str]) -> Value:
        if arguments:
            raise ExpressionError("METRICS() with a filter is not supported by the console")
        return list(self._series.values())


def _reduce(
    name: str, per_point: Callable[[list[float]], float]
) -> Callable[[Evaluator, list[Value | str]], Value]:
    def apply(_: Evaluator, arguments: list[Value | str]) -> Value:
        (value,) = _expect(arguments, 1, name)
        if isinstance(value, Series):  # one series: a scalar over its points
            return per_point(list(value.points.values())) if value.points else float("nan")
        series = as_series_list(value)
        stamps = sorted({t for s in series for t in s.points})
        points = {t: per_point([s.points[t] for s in series if t in s.points]) for t in stamps}
        period = series[0].period if series else 60
        return Series(points, period, label=name)

    return apply


_FUNCTIONS: dict[str, Callable[[Evaluator, list[Value | str]], Value]] = {
    "SEARCH": Evaluator._search,
    "PERIOD": Evaluator._period,
    "FILL": Evaluator._fill,
    "IF": Evaluator._if,
    "METRICS": Evaluator._metrics,
    "SUM": _reduce("SUM", sum),
    "AVG": _reduce("AVG", lambda values: sum(values) / len(values)),
    "MIN": _reduce("MIN", min),
    "MAX": _reduce("MAX", max),
}


def _expect(arguments: list[Value | str], count: int, name: str) -> list[Value | str]:
    if len(arguments) != count:
        raise ExpressionError(f"{name}() takes {count} argument(s), got {len(arguments)}")
    if name != "FILL" and any(isinstance(a, str) for a in arguments):
        raise ExpressionError(f"{name}() takes metrics, not strings")
    return arguments


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def as_series_list(value: Value | str) -> list[Series]:
    if isinstance(value, Series):
        return [value]
    if isinstance(value, list):
        return value
    raise ExpressionError(f"expected a metric, got {value!r}")


def _map_series(value: Value | str, apply: Callable[[Series], Series]) -> Value:
    if isinstance(value, Series):
        return apply(value)
    return [apply(s) for s in as_series_list(value)]


def combine(left: Value, right: Value, apply: Callable[[float, float], float | None]) -> Value:
    """Apply a binary operation: scalar with scalar, scalar with every point, or two series on
    the timestamps of either. A list of series (from SEARCH) applies element by element."""
    if isinstance(left, list):
        return [_as_series(combine(s, right, apply)) for s in left]
    if isinstance(right, list):
        return [_as_series(combine(left, s, apply)) for s in right]
    if isinstance(left, float) and isinstance(right, float):
        result = apply(left, right)
        return float("nan") if result is None else result
    if isinstance(left, float):
        assert isinstance(right, Series)  # noqa: S101 - narrowed by the branches above
        return _derive(right, {t: apply(left, v) for t, v in right.points.items()})
    if isinstance(right, float):
        return _derive(left, {t: apply(v, right) for t, v in left.points.items()})
    # A timestamp of either series counts, the other's missing value as 0: the rule the
    # alarms' evaluator applies too (sandbox.metric_math), so a graph agrees with its alarm.
    stamps = left.points.keys() | right.points.keys()
    return _derive(
        left, {t: apply(left.points.get(t, 0.0), right.points.get(t, 0.0)) for t in stamps}
    )


def _as_series(value: Value) -> Series:
    if not isinstance(value, Series):
        raise ExpressionError("an operation on several series must give one series each")
    return value


def _derive(template: Series, points: Mapping[float, float | None]) -> Series:
    kept = {t: v for t, v in sorted(points.items()) if v is not None}
    return Series(
        kept,
        template.period,
        label=template.label,
        namespace=template.namespace,
        metric_name=template.metric_name,
        dimensions=dict(template.dimensions),
        stat=template.stat,
    )


def fill(series: Series, filler: Value | str, window: Window) -> Series:
    """FILL(m, value|REPEAT): missing periods of the window get the value (or the last one)."""
    points: Points = {}
    last: float | None = None
    for stamp in window.grid(series.period):
        if stamp in series.points:
            last = series.points[stamp]
            points[stamp] = last
        elif filler == "REPEAT":
            if last is not None:
                points[stamp] = last
        elif isinstance(filler, float):
            points[stamp] = filler
        else:
            raise ExpressionError(f"FILL's value must be a number or REPEAT, not {filler!r}")
    return _derive(series, points)


def if_(condition: Value, when_true: Value, when_false: Value | None) -> Value:
    """IF(condition, a, b): a where the condition is non-zero, else b (no point if b omitted)."""
    if isinstance(condition, list):
        return [_as_series(if_(c, when_true, when_false)) for c in condition]
    if isinstance(condition, float):
        chosen = when_true if condition != 0 else when_false
        return float("nan") if chosen is None else chosen
    points: dict[float, float | None] = {}
    for stamp, flag in condition.points.items():
        chosen = when_true if flag != 0 else when_false
        points[stamp] = _value_at(chosen, stamp)
    return _derive(condition, points)


def _value_at(value: Value | None, stamp: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, Series):
        return value.points.get(stamp)
    raise ExpressionError("IF's values must be single metrics or numbers")


# SEARCH('{Namespace,Dim1,Dim2} MetricName="X" Dim1="v"', 'Stat', period)
_SCHEMA = re.compile(r"^\s*\{(?P<schema>[^}]*)\}(?P<terms>.*)$")
_TERM = re.compile(
    r"\s*(?:\"(?P<qkey>[^\"]+)\"|(?P<key>[A-Za-z0-9_.:/-]+))\s*=\s*\"(?P<v>[^\"]*)\""
)


@dataclass(frozen=True)
class SearchQuery:
    """A parsed SEARCH query: the schema (namespace and exact dimension names) and terms."""

    namespace: str
    dimension_names: frozenset[str]
    terms: tuple[tuple[str, str], ...]

    def matches(self, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> bool:
        if namespace != self.namespace or set(dimensions) != self.dimension_names:
            return False
        properties = {**dimensions, "MetricName": metric_name, "Namespace": namespace}
        return all(properties.get(key) == value for key, value in self.terms)


def parse_search(query: str) -> SearchQuery:
    """Parse a SEARCH query of the schema-and-exact-terms form dashboards use.

    Free-text terms, partial matches and AND/OR/NOT are not supported: ExpressionError.
    (Search syntax: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html)
    """
    match = _SCHEMA.match(query)
    if match is None:
        raise ExpressionError(f"SEARCH query {query!r} has no {{Namespace,Dimension...}} schema")
    schema = [part.strip().strip('"') for part in match.group("schema").split(",")]
    terms = []
    rest = match.group("terms")
    while rest.strip():
        term = _TERM.match(rest)
        if term is None:
            raise ExpressionError(
                f"SEARCH term {rest.strip()!r} is not supported by the sandbox console "
                '(only Name="value" terms that match exactly)'
            )
        terms.append((term.group("qkey") or term.group("key"), term.group("v")))
        rest = rest[term.end() :]
    return SearchQuery(schema[0], frozenset(schema[1:]), tuple(terms))


def search(store: MetricSource, query: str, stat: str, period: int, window: Window) -> list[Series]:
    """The series of every stored metric matching `query`, sorted by their dimensions."""
    parsed = parse_search(query)
    found = []
    for namespace, name, dimensions in store.metrics():
        if parsed.matches(namespace, name, dimensions):
            found.append(
                fetch(store, namespace, name, dimensions, stat=stat, period=period, window=window)
            )
    return sorted(found, key=lambda s: (s.metric_name, sorted(s.dimensions.items())))


def fetch(
    store: MetricSource,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    *,
    stat: str,
    period: int,
    window: Window,
) -> Series:
    """One metric's statistic over the window, as a Series (periods aligned as CloudWatch's)."""
    start = window.start - window.start % period
    points = store.statistic(namespace, metric_name, dimensions, stat, period, start, window.end)
    return Series(
        {float(t): float(v) for t, v in points},
        period,
        label=metric_name,
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dict(dimensions),
        stat=stat,
    )


_LABEL_TOKEN = re.compile(r"\$\{(?:PROP\('(?P<prop>[^']+)'\)|(?P<agg>[A-Z]+))\}")
_AGGREGATES: dict[str, Callable[[Sequence[float]], float]] = {
    "AVG": lambda v: sum(v) / len(v),
    "MAX": max,
    "MIN": min,
    "SUM": sum,
    "FIRST": lambda v: v[0],
    "LAST": lambda v: v[-1],
}


def render_label(label: str, series: Series) -> str:
    """A label's dynamic parts: ${PROP('Dim.X')}, ${PROP('MetricName')}, ${AVG}, ${MAX}...

    (Dynamic labels: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/graph-dynamic-labels.html)
    """

    def substitute(match: re.Match[str]) -> str:
        prop, aggregate = match.group("prop"), match.group("agg")
        if prop is not None:
            properties = {
                "MetricName": series.metric_name,
                "Namespace": series.namespace,
                "Period": str(series.period),
                "Stat": series.stat,
                **{f"Dim.{k}": v for k, v in series.dimensions.items()},
            }
            return properties.get(prop, "")
        values = [series.points[t] for t in sorted(series.points)]
        if aggregate not in _AGGREGATES:
            raise ExpressionError(f"dynamic label ${{{aggregate}}} is not supported")
        return f"{_AGGREGATES[aggregate](values):.3g}" if values else "-"

    return _LABEL_TOKEN.sub(substitute, label)
