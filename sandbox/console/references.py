"""Which metrics the dashboard and the alarms read, and which of them have no data.

The metric contract runs both ways: the handler and AWS publish metrics, the dashboard and
the alarms read them by namespace, name and exact dimensions. A one-sided rename leaves a
graph blank and an alarm with nothing to evaluate, and nothing fails. :func:`missing_data`
lists every reference that finds no data in a metric store, so a test (and the console)
can say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.console.dashboard import Attributes, BodyResolver, Dashboard
from sandbox.console.graphs import ExpressionRow, MetricRow, parse_rows
from sandbox.metric_math import ExpressionError, MetricSource, parse_search

ALARM_TYPE = "AWS::CloudWatch::Alarm"
_SEARCH_QUERY = "SEARCH('"


@dataclass(frozen=True)
class MetricReference:
    """One metric a widget or alarm reads: exact identity, or a SEARCH query (`search`)."""

    where: str  # "widget 'Errors'" or "alarm upload-ledger-dev-function-errors"
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    search: str = ""

    def __str__(self) -> str:
        if self.search:
            return f"{self.where}: SEARCH {self.search}"
        dimensions = ", ".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.where}: {self.namespace} {self.metric_name} {{{dimensions}}}"


def dashboard_references(dashboard: Dashboard) -> list[MetricReference]:
    """Every metric row and SEARCH of the dashboard's metric widgets."""
    references = []
    for widget in dashboard.widgets:
        if widget.type != "metric":
            continue
        where = f"widget {widget.title!r}"
        for row in parse_rows(widget.properties):
            if isinstance(row, MetricRow):
                dimensions = tuple(sorted(row.dimensions.items()))
                references.append(
                    MetricReference(where, row.namespace, row.metric_name, dimensions)
                )
            elif isinstance(row, ExpressionRow) and _SEARCH_QUERY in row.expression:
                query = row.expression.split(_SEARCH_QUERY, 1)[1].split("',", 1)[0]
                parsed = parse_search(query)
                references.append(MetricReference(where, parsed.namespace, "", search=query))
    return references


def alarm_references(
    resources: Mapping[str, Any],
    physical: Mapping[str, Attributes],
    pseudo: Mapping[str, str],
) -> list[MetricReference]:
    """Every metric the template's alarms read (single-metric and metric-math alarms),
    dimension values resolved to what the sandbox deployed (`physical`, `pseudo`)."""
    resolve = BodyResolver(physical, {}, pseudo).resolve
    alarm_names = {logical_id: deployed.ref for logical_id, deployed in physical.items()}
    references = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != ALARM_TYPE:
            continue
        properties = resource.get("Properties", {})
        where = f"alarm {alarm_names.get(logical_id, logical_id)}"
        metrics = (
            [properties]
            if "MetricName" in properties
            else [
                query["MetricStat"]["Metric"]
                for query in properties.get("Metrics", [])
                if "MetricStat" in query
            ]
        )
        for metric in metrics:
            dimensions = tuple(
                sorted((d["Name"], resolve(d["Value"])) for d in metric.get("Dimensions", []))
            )
            references.append(
                MetricReference(where, metric["Namespace"], metric["MetricName"], dimensions)
            )
    return references


def missing_data(
    references: Iterable[MetricReference], store: MetricSource
) -> list[MetricReference]:
    """The references that find no data in `store` (a SEARCH must match at least one metric)."""
    stored = store.metrics()
    identities = {(ns, name, tuple(sorted(dims.items()))) for ns, name, dims in stored}
    missing = []
    for reference in references:
        if reference.search:
            try:
                query = parse_search(reference.search)
            except ExpressionError:
                missing.append(reference)
                continue
            if not any(query.matches(ns, name, dims) for ns, name, dims in stored):
                missing.append(reference)
        elif (reference.namespace, reference.metric_name, reference.dimensions) not in identities:
            missing.append(reference)
    return missing
