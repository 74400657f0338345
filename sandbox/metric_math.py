"""CloudWatch metric math, the part alarms use: arithmetic, comparison, logic, IF and FILL.

Series are {period start (epoch seconds): value}. The rules are CloudWatch's
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html):
- arithmetic (+ - * / ^) and comparison (== != < <= > >=, giving 1 or 0) between two
  series cover the timestamps of either, a value missing in one counting as 0; a
  datapoint that would divide by zero is dropped;
- AND / && and OR / || work like comparisons, on truthiness (non-zero is true);
- IF(condition, trueValue[, falseValue]) per timestamp of the condition: a true point
  takes trueValue (0 if that series lacks the point), a false one takes falseValue or is
  dropped if it is missing or omitted; a scalar condition picks a whole branch;
- FILL(series, scalar) gives every period of the query a value.
Anything else (other functions, METRICS(), SEARCH...) raises UnsupportedExpressionError
naming it: the drill never passes an alarm it cannot evaluate.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Series = dict[float, float]
Value = float | Series


class UnsupportedExpressionError(ValueError):
    """The expression uses something the evaluator does not model."""


_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/^<>(),]))"
)
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": operator.pow,
}
_LOGICAL = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR"}


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | op | end
    text: str


def tokenize(expression: str) -> list[_Token]:
    tokens, position = [], 0
    stripped = expression.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise UnsupportedExpressionError(
                f"metric math {expression!r}: unexpected text at {stripped[position:]!r}"
            )
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens


@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Ref:
    name: str


@dataclass(frozen=True)
class _Negate:
    operand: _Node


@dataclass(frozen=True)
class _Binary:
    symbol: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Call:
    name: str
    arguments: tuple[_Node, ...]


_Node = _Number | _Ref | _Negate | _Binary | _Call


class Expression:
    """A parsed metric math expression, evaluated against named series."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens = tokenize(text)
        self._index = 0
        self._tree = self._or()
        if self._peek().kind != "end":
            raise self._error(f"unexpected {self._peek().text!r}")

    def references(self) -> set[str]:
        """The ids (metrics or other expressions) the expression reads."""
        found: set[str] = set()
        pending: list[_Node] = [self._tree]
        while pending:
            node = pending.pop()
            if isinstance(node, _Ref):
                found.add(node.name)
            elif isinstance(node, _Negate):
                pending.append(node.operand)
            elif isinstance(node, _Binary):
                pending += [node.left, node.right]
            elif isinstance(node, _Call):
                pending += node.arguments
        return found

    def evaluate(self, values: Mapping[str, Series], periods: Sequence[float]) -> Series:
        """The result series; `periods` are every period start of the query (for FILL)."""
        result = self._evaluate(self._tree, values, periods)
        if not isinstance(result, dict):
            raise self._error("it gives a single number; an alarm needs a time series")
        return result

    def _error(self, message: str) -> UnsupportedExpressionError:
        return UnsupportedExpressionError(f"metric math {self.text!r}: {message}")

    # Recursive descent, lowest precedence first: OR, AND, comparison, + -, * /, ^, unary.
    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _take(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _binary(
        self, operand: Callable[[], _Node], symbols: Callable[[_Token], str | None]
    ) -> _Node:
        left = operand()
        while (symbol := symbols(self._peek())) is not None:
            self._take()
            left = _Binary(symbol, left, operand())
        return left

    def _or(self) -> _Node:
        return self._binary(self._and, lambda t: "OR" if _LOGICAL.get(t.text) == "OR" else None)

    def _and(self) -> _Node:
        return self._binary(
            self._comparison, lambda t: "AND" if _LOGICAL.get(t.text) == "AND" else None
        )

    def _comparison(self) -> _Node:
        return self._binary(self._sum, lambda t: t.text if t.text in _COMPARISONS else None)

    def _sum(self) -> _Node:
        return self._binary(self._product, lambda t: t.text if t.text in ("+", "-") else None)

    def _product(self) -> _Node:
        return self._binary(self._power, lambda t: t.text if t.text in ("*", "/") else None)

    def _power(self) -> _Node:
        return self._binary(self._unary, lambda t: "^" if t.text == "^" else None)

    def _unary(self) -> _Node:
        if self._peek().text == "-":
            self._take()
            return _Negate(self._unary())
        return self._atom()

    def _atom(self) -> _Node:
        token = self._take()
        if token.kind == "number":
            return _Number(float(token.text))
        if token.text == "(":
            node = self._or()
            self._expect(")")
            return node
        if token.kind == "name" and self._peek().text == "(":
            return self._call(token.text)
        if token.kind == "name" and token.text[0].islower():
            return _Ref(token.text)
        raise self._error(f"unexpected {token.text or 'end of expression'!r}")

    def _call(self, name: str) -> _Node:
        if name not in ("IF", "FILL"):
            raise self._error(f"function {name} is not supported by the drill (IF and FILL are)")
        self._expect("(")
        arguments = [self._or()]
        while self._peek().text == ",":
            self._take()
            arguments.append(self._or())
        self._expect(")")
        if name == "IF" and len(arguments) not in (2, 3):
            raise self._error("IF takes (condition, trueValue[, falseValue])")
        if name == "FILL" and (len(arguments) != 2 or not isinstance(arguments[1], _Number)):
            raise self._error("FILL is supported with a number as its filler: FILL(m1, 0)")
        return _Call(name, tuple(arguments))

    def _expect(self, text: str) -> None:
        if self._take().text != text:
            raise self._error(f"expected {text!r}")

    def _evaluate(
        self, node: _Node, values: Mapping[str, Series], periods: Sequence[float]
    ) -> Value:
        if isinstance(node, _Number):
            return node.value
        if isinstance(node, _Ref):
            if node.name not in values:
                raise self._error(f"no metric or expression with id {node.name!r}")
            return dict(values[node.name])
        if isinstance(node, _Negate):
            return _combine("*", -1.0, self._evaluate(node.operand, values, periods))
        if isinstance(node, _Binary):
            left = self._evaluate(node.left, values, periods)
            return _combine(node.symbol, left, self._evaluate(node.right, values, periods))
        evaluated = [self._evaluate(argument, values, periods) for argument in node.arguments]
        if node.name == "FILL":
            series, filler = evaluated
            if not isinstance(series, dict) or not isinstance(filler, float):
                raise self._error("FILL takes (series, number)")
            return {period: series.get(period, filler) for period in periods}
        return _if(*evaluated)


def _apply(symbol: str, left: float, right: float) -> float | None:
    if symbol in _COMPARISONS:
        return float(_COMPARISONS[symbol](left, right))
    if symbol == "AND":
        return float(left != 0 and right != 0)
    if symbol == "OR":
        return float(left != 0 or right != 0)
    if symbol == "/" and right == 0:
        return None  # CloudWatch drops a datapoint that would divide by zero
    return _ARITHMETIC[symbol](left, right)


def _combine(symbol: str, left: Value, right: Value) -> Value:
    if isinstance(left, float) and isinstance(right, float):
        result = _apply(symbol, left, right)
        if result is None:
            raise UnsupportedExpressionError("metric math divides a number by zero")
        return result
    if isinstance(left, dict) and isinstance(right, dict):
        stamps = sorted(set(left) | set(right))
        pairs = [(t, left.get(t, 0.0), right.get(t, 0.0)) for t in stamps]
    elif isinstance(left, dict) and isinstance(right, float):
        pairs = [(t, v, right) for t, v in sorted(left.items())]
    elif isinstance(left, float) and isinstance(right, dict):
        pairs = [(t, left, v) for t, v in sorted(right.items())]
    else:  # unreachable: every value is a number or a series
        raise UnsupportedExpressionError("metric math: unexpected operands")
    combined: Series = {}
    for stamp, a, b in pairs:
        result = _apply(symbol, a, b)
        if result is not None:
            combined[stamp] = result
    return combined


def _if(condition: Value, when_true: Value, when_false: Value | None = None) -> Value:
    if isinstance(condition, float):
        chosen = when_true if condition != 0 else when_false
        return {} if chosen is None else chosen
    result: Series = {}
    for stamp, test in sorted(condition.items()):
        if test != 0:
            result[stamp] = (
                when_true.get(stamp, 0.0) if isinstance(when_true, dict) else float(when_true)
            )
        elif isinstance(when_false, dict):
            if stamp in when_false:
                result[stamp] = when_false[stamp]
        elif when_false is not None:
            result[stamp] = float(when_false)
    return result
