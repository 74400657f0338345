"""CloudWatch metric math: the one evaluator of the alarms (sandbox.alarms) and the console.

Rules from "Using metric math" in the CloudWatch User Guide
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html):
- arithmetic (+ - * / ^, unary minus) and comparisons (== != < <= > >=, giving 1 or 0)
  between two series cover the timestamps of either, a value missing in one counting as 0;
  a scalar applies to every point; a datapoint that would divide by zero is dropped (a
  number divided by zero is NaN);
- AND / && and OR / || work like comparisons, on truthiness (non-zero is true);
- IF(condition, trueValue[, falseValue]) per timestamp of the condition: a true point takes
  trueValue (0 if that series lacks the point), a false one takes falseValue, or no point
  if falseValue lacks it or is omitted; a scalar condition picks a whole branch;
- FILL(series, number | REPEAT) gives every period of the query a value (REPEAT: the last
  one seen); PERIOD(m) is the metric's period in seconds;
- SUM/AVG/MIN/MAX of one series is a number, of several series ([m1, m2], METRICS(),
  SEARCH(...)) a series, point by point; METRICS() is every series of the request;
- SEARCH('{Namespace,Dim...} Name="value"...', 'Stat', period): the stored metrics whose
  dimension names are exactly the schema's and whose terms match exactly.
Anything else raises :class:`ExpressionError` naming it: nothing is silently wrong.

Alarms accept less (see :meth:`Expression.for_alarm`): no SEARCH ("You can't create an alarm
based on the SEARCH expression", using-search-expressions.html), and the returned
expression must give exactly one time series.
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
    """A metric math expression that is malformed or uses what the evaluator doesn't model."""


class MetricSource(Protocol):
    """What SEARCH reads: the sandbox's metric store (sandbox.metrics.MetricStore)."""

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


class Grid(Protocol):
    """The period starts of a query, where FILL puts its values."""

    def grid(self, period: int) -> Sequence[float]: ...


@dataclass(frozen=True)
class Window:
    """The time range a graph shows, in epoch seconds."""

    start: float
    end: float

    def grid(self, period: int) -> list[float]:
        """Every period start in the window, aligned to the period as CloudWatch's."""
        first = self.start - self.start % period
        return [float(t) for t in range(int(first), int(self.end), period)]


@dataclass(frozen=True)
class Periods:
    """An alarm's query: exactly these period starts, whatever the series' period."""

    starts: tuple[float, ...]

    def grid(self, period: int) -> tuple[float, ...]:
        return self.starts


def _no_search(query: str, stat: str, period: int) -> list[Series]:
    raise ExpressionError("SEARCH is not available here")


@dataclass(frozen=True)
class Context:
    """What an expression is evaluated against: the request's series by id, its periods,
    and SEARCH's answer (query, stat, period) -> series (see :func:`search`)."""

    series: Mapping[str, Series]
    grid: Grid
    search: Callable[[str, str, int], list[Series]] = _no_search


# Tokens: numbers, names, quoted strings, two-character operators before one-character ones.
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>>=|<=|==|!=|&&|\|\||[-+*/^(),<>\[\]]))"
)
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_LOGICAL = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR"}
_KEYWORDS = ("REPEAT", "LINEAR")  # FILL's fillers, not metric ids


def _as_number(compare: Callable[[float, float], bool]) -> Callable[[float, float], float]:
    """A comparison giving 1 or 0, as metric math's comparison operators do."""
    return lambda a, b: float(compare(a, b))


def _divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b  # CloudWatch drops a datapoint that divides by zero


_OPERATIONS: dict[str, Callable[[float, float], float | None]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "^": operator.pow,
    "AND": lambda a, b: float(a != 0 and b != 0),
    "OR": lambda a, b: float(a != 0 or b != 0),
    **{symbol: _as_number(compare) for symbol, compare in _COMPARISONS.items()},
}


def tokenize(expression: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; raises ExpressionError at the first character it can't read."""
    tokens = []
    position = 0
    text = expression.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"can't read {expression!r} at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


# The parsed tree.
@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Text:  # a quoted string or a keyword (REPEAT): only a function's argument
    value: str


@dataclass(frozen=True)
class _Ref:
    name: str


@dataclass(frozen=True)
class _Binary:
    symbol: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: tuple[_Node, ...]


@dataclass(frozen=True)
class _Array:
    items: tuple[_Node, ...]


_Node = Union[_Number, _Text, _Ref, _Binary, _Call, _Array]  # noqa: UP007


class _Parser:
    """Recursive descent, loosest binding first: OR, AND, comparison, + -, * /, unary, ^."""

    def __init__(self, text: str) -> None:
        self._tokens = tokenize(text)
        self._at = 0

    def parse(self) -> _Node:
        if not self._tokens:
            raise ExpressionError("empty expression")
        node = self._or()
        if self._at != len(self._tokens):
            raise ExpressionError(f"unexpected {self._tokens[self._at][1]!r}")
        return node

    def _peek(self) -> tuple[str, str]:
        return self._tokens[self._at] if self._at < len(self._tokens) else ("end", "")

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self._at >= len(self._tokens):
            raise ExpressionError(f"expression ends early (expected {expected or 'more'})")
        token = self._tokens[self._at]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, found {token[1]!r}")
        self._at += 1
        return token

    def _binary(self, operand: Callable[[], _Node], symbol: Callable[[str], str | None]) -> _Node:
        left = operand()
        while (found := symbol(self._peek()[1])) is not None:
            self._take()
            left = _Binary(found, left, operand())
        return left

    def _or(self) -> _Node:
        return self._binary(self._and, lambda t: "OR" if _LOGICAL.get(t) == "OR" else None)

    def _and(self) -> _Node:
        return self._binary(self._comparison, lambda t: "AND" if _LOGICAL.get(t) == "AND" else None)

    def _comparison(self) -> _Node:
        return self._binary(self._sum, lambda t: t if t in _COMPARISONS else None)

    def _sum(self) -> _Node:
        return self._binary(self._product, lambda t: t if t in ("+", "-") else None)

    def _product(self) -> _Node:
        return self._binary(self._unary, lambda t: t if t in ("*", "/") else None)

    def _unary(self) -> _Node:
        if self._peek()[1] == "-":
            self._take()
            return _Binary("*", _Number(-1.0), self._unary())
        return self._power()

    def _power(self) -> _Node:
        base = self._atom()
        if self._peek()[1] == "^":
            self._take()
            return _Binary("^", base, self._unary())  # right-associative: 2^3^2 = 2^9
        return base

    def _atom(self) -> _Node:
        kind, text = self._take()
        if kind == "number":
            return _Number(float(text))
        if kind == "string":
            return _Text(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if text == "(":
            node = self._or()
            self._take(")")
            return node
        if text == "[":
            return _Array(self._list("]"))
        if kind == "name":
            return self._named(text)
        raise ExpressionError(f"unexpected {text!r}")

    def _named(self, name: str) -> _Node:
        if self._peek()[1] == "(":
            self._take("(")
            return _Call(name.upper(), self._list(")"))
        if name in _KEYWORDS:
            return _Text(name)
        if name in _LOGICAL:
            raise ExpressionError(f"unexpected {name!r}")
        return _Ref(name)

    def _list(self, closing: str) -> tuple[_Node, ...]:
        items: list[_Node] = []
        while self._peek()[1] != closing:
            items.append(self._or())
            if self._peek()[1] != closing:
                self._take(",")
        self._take(closing)
        return tuple(items)


def _walk(node: _Node) -> list[_Node]:
    found, pending = [], [node]
    while pending:
        current = pending.pop()
        found.append(current)
        if isinstance(current, _Binary):
            pending += [current.left, current.right]
        elif isinstance(current, (_Call, _Array)):
            pending += current.arguments if isinstance(current, _Call) else current.items
    return found


class Expression:
    """A parsed metric math expression; ExpressionError if malformed or unsupported."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = _Parser(text).parse()
            for node in _walk(self._tree):
                if isinstance(node, _Call) and node.name not in _FUNCTIONS:
                    raise ExpressionError(
                        f"function {node.name}() is not supported by the sandbox "
                        f"(supported: {', '.join(sorted(_FUNCTIONS))})"
                    )
        except ExpressionError as error:
            raise self._error(str(error)) from error

    @classmethod
    def for_alarm(cls, text: str) -> Expression:
        """An expression as a CloudWatch alarm accepts it: SEARCH is rejected (alarms watch
        one time series; "Create a CloudWatch alarm based on a metric math expression")."""
        expression = cls(text)
        if "SEARCH" in expression.functions():
            raise expression._error("an alarm can't use SEARCH (CloudWatch rejects it)")
        return expression

    def functions(self) -> set[str]:
        """The functions it calls, upper case (SEARCH, FILL...)."""
        return {node.name for node in _walk(self._tree) if isinstance(node, _Call)}

    def evaluate(self, context: Context) -> Value:
        """A number, a series, or several series (SEARCH and what is applied to it)."""
        try:
            return _evaluate(self._tree, context)
        except ExpressionError as error:
            raise self._error(str(error)) from error

    def evaluate_alarm(self, values: Mapping[str, Points], periods: Sequence[float]) -> Points:
        """The alarm's series from its queries' points, `periods` the period starts of the
        query (all one period apart); ExpressionError unless it gives one time series."""
        period = int(periods[1] - periods[0]) if len(periods) > 1 else 60
        series = {name: Series(dict(points), period) for name, points in values.items()}
        result = self.evaluate(Context(series, Periods(tuple(periods))))
        if isinstance(result, list) and len(result) == 1:
            result = result[0]
        if not isinstance(result, Series):
            raise self._error("it doesn't give one time series, which an alarm needs")
        return result.points

    def _error(self, message: str) -> ExpressionError:
        return ExpressionError(f"metric math {self.text!r}: {message}")


def _evaluate(node: _Node, context: Context) -> Value:
    if isinstance(node, _Number):
        return node.value
    if isinstance(node, _Ref):
        if node.name not in context.series:
            known = ", ".join(sorted(context.series)) or "none"
            raise ExpressionError(f"{node.name!r} is not a metric id of this request ({known})")
        return context.series[node.name]
    if isinstance(node, _Binary):
        left, right = _evaluate(node.left, context), _evaluate(node.right, context)
        return combine(left, right, _OPERATIONS[node.symbol])
    if isinstance(node, _Array):
        return [s for item in node.items for s in as_series_list(_evaluate(item, context))]
    if isinstance(node, _Call):
        arguments = [
            a.value if isinstance(a, _Text) else _evaluate(a, context) for a in node.arguments
        ]
        return _FUNCTIONS[node.name](context, arguments)
    raise ExpressionError(f"{node.value!r} is only a function's argument")


# Functions: (context, evaluated arguments, strings as str) -> value.
Argument = Union[Value, str]  # noqa: UP007


def _search(context: Context, arguments: list[Argument]) -> Value:
    if len(arguments) != 3:
        raise ExpressionError("SEARCH takes ('query', 'stat', period)")
    query, stat, period = arguments
    if not (isinstance(query, str) and isinstance(stat, str) and isinstance(period, float)):
        raise ExpressionError("SEARCH takes ('query', 'stat', period)")
    return context.search(query, stat, int(period))


def _period(context: Context, arguments: list[Argument]) -> Value:
    (value,) = _expect(arguments, 1, "PERIOD")
    series = as_series_list(value)
    if not series:
        raise ExpressionError("PERIOD() needs a metric")
    return float(series[0].period)


def _fill(context: Context, arguments: list[Argument]) -> Value:
    value, filler = _expect(arguments, 2, "FILL")
    if isinstance(value, Series):
        return fill(value, filler, context.grid)
    return [fill(s, filler, context.grid) for s in as_series_list(value)]


def _if(context: Context, arguments: list[Argument]) -> Value:
    if len(arguments) not in (2, 3):
        raise ExpressionError("IF takes (condition, trueValue[, falseValue])")
    if any(isinstance(a, str) for a in arguments):
        raise ExpressionError("IF takes metrics or numbers, not strings")
    condition, when_true = arguments[0], arguments[1]
    when_false = arguments[2] if len(arguments) == 3 else None
    return if_(condition, when_true, when_false)  # type: ignore[arg-type]


def _metrics(context: Context, arguments: list[Argument]) -> Value:
    if arguments:
        raise ExpressionError("METRICS() with a filter is not supported by the sandbox")
    return list(context.series.values())


def _reduce(name: str, per_point: Callable[[list[float]], float]) -> _Function:
    def apply(_: Context, arguments: list[Argument]) -> Value:
        (value,) = _expect(arguments, 1, name)
        if isinstance(value, Series):  # one series: a scalar over its points
            return per_point(list(value.points.values())) if value.points else float("nan")
        series = as_series_list(value)
        stamps = sorted({t for s in series for t in s.points})
        points = {t: per_point([s.points[t] for s in series if t in s.points]) for t in stamps}
        period = series[0].period if series else 60
        return Series(points, period, label=name)

    return apply


_Function = Callable[[Context, list[Argument]], Value]
_FUNCTIONS: dict[str, _Function] = {
    "SEARCH": _search,
    "PERIOD": _period,
    "FILL": _fill,
    "IF": _if,
    "METRICS": _metrics,
    "SUM": _reduce("SUM", sum),
    "AVG": _reduce("AVG", lambda values: sum(values) / len(values)),
    "MIN": _reduce("MIN", min),
    "MAX": _reduce("MAX", max),
}


def _expect(arguments: list[Argument], count: int, name: str) -> list[Argument]:
    if len(arguments) != count:
        raise ExpressionError(f"{name}() takes {count} argument(s), got {len(arguments)}")
    if name != "FILL" and any(isinstance(a, str) for a in arguments):
        raise ExpressionError(f"{name}() takes metrics, not strings")
    return arguments


def as_series_list(value: Value | str) -> list[Series]:
    """A series or several as a list; ExpressionError for a number or a string."""
    if isinstance(value, Series):
        return [value]
    if isinstance(value, list):
        return value
    raise ExpressionError(f"expected a metric, got {value!r}")


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


def fill(series: Series, filler: Value | str, grid: Grid) -> Series:
    """FILL(m, value|REPEAT): missing periods of the grid get the value (or the last one)."""
    points: Points = {}
    last: float | None = None
    for stamp in grid.grid(series.period):
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
    """IF(condition, a, b) per point of the condition: a where it is non-zero (0 if a series
    `a` lacks the point), else b (no point where `b` lacks it or is omitted)."""
    if isinstance(condition, list):
        return [_as_series(if_(c, when_true, when_false)) for c in condition]
    if isinstance(condition, float):
        chosen = when_true if condition != 0 else when_false
        if chosen is not None:
            return chosen
        return _derive(when_true, {}) if isinstance(when_true, Series) else float("nan")
    points: dict[float, float | None] = {}
    for stamp, flag in condition.points.items():
        if flag != 0:
            points[stamp] = _value_at(when_true, stamp, missing=0.0)
        else:
            points[stamp] = _value_at(when_false, stamp, missing=None)
    return _derive(condition, points)


def _value_at(value: Value | None, stamp: float, missing: float | None) -> float | None:
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, Series):
        return value.points.get(stamp, missing)
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
