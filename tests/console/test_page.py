"""The console page from a dashboard body: every widget kind, its grid position, its data,
and a clear in-place error for what can't be drawn."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from sandbox.console.dashboard import parse_dashboard, parse_relative_start
from sandbox.console.page import AlarmStatus, Panels, render_page
from sandbox.metrics import MetricStore
from sandbox.template import TemplateError

NOW = 1_800_000_000.0  # a minute boundary
FN = {"FunctionName": "fn", "Resource": "fn:live"}
FN_ITEMS = ["FunctionName", "fn", "Resource", "fn:live"]  # the same, as a metrics row has it


def _store() -> MetricStore:
    store = MetricStore()
    for minute in range(1, 6):
        for duration in (10.0, 20.0, 30.0, 40.0, 100.0):
            store.put("AWS/Lambda", "Duration", FN, duration * minute, NOW - 60 * minute, "Ms")
        store.put("AWS/Lambda", "Invocations", FN, 5.0, NOW - 60 * minute, "Count")
    return store


def _metric(
    title: str, metrics: list[Any], view: str = "timeSeries", **grid: int
) -> dict[str, Any]:
    position = {"x": 0, "y": 0, "width": 12, "height": 6, **grid}
    return {
        "type": "metric",
        **position,
        "properties": {"title": title, "view": view, "metrics": metrics},
    }


def _render(*widgets: dict[str, Any], panels: Panels | None = None) -> tuple[str, list[str]]:
    dashboard = parse_dashboard("dash", {"start": "-PT1H", "widgets": list(widgets)})
    return render_page(dashboard, _store(), NOW, panels or Panels(), inline_plotly=False)


def _cell(page: str, title: str) -> str:
    match = re.search(rf'<section [^>]*data-title="{re.escape(title)}">(.*?)</section>', page, re.S)
    assert match, f"no widget {title!r}"
    return match.group(1)


def test_each_widget_sits_at_its_grid_position_with_its_title() -> None:
    page, errors = _render(
        _metric("Left", [["AWS/Lambda", "Invocations", *FN_ITEMS, {"stat": "Sum", "period": 60}]]),
        _metric("Right", [["AWS/Lambda", "Invocations", *FN_ITEMS]], x=12, y=6, width=6),
    )
    assert errors == []
    assert 'style="grid-column:1/span 12;grid-row:1/span 6" data-title="Left"' in page
    assert 'style="grid-column:13/span 6;grid-row:7/span 6" data-title="Right"' in page


def test_percentiles_and_sums_are_plotted_from_the_store() -> None:
    page, errors = _render(
        _metric(
            "Duration",
            [
                [
                    "AWS/Lambda",
                    "Duration",
                    *FN_ITEMS,
                    {"stat": "p50", "period": 60, "label": "p50"},
                ],
                [".", ".", ".", ".", ".", ".", {"stat": "p99", "period": 60, "label": "p99"}],
            ],
        )
    )
    assert errors == []
    cell = _cell(page, "Duration")
    assert 'data-points="10"' in cell  # 5 minutes x 2 lines
    # p50 of {10,20,30,40,100} x minute 1 is 30; p99 is 100 (nearest rank).
    assert '"name":"p50"' in cell
    assert "30.0" in cell
    assert "100.0" in cell


def test_single_value_shows_the_latest_value_of_each_line() -> None:
    page, errors = _render(
        _metric(
            "Now",
            [["AWS/Lambda", "Invocations", *FN_ITEMS, {"stat": "Sum", "period": 60}]],
            view="singleValue",
        )
    )
    assert errors == []
    assert '<span class="value">5</span>' in _cell(page, "Now")


def test_text_widgets_render_markdown() -> None:
    text = {
        "type": "text",
        "x": 0,
        "y": 0,
        "width": 24,
        "height": 2,
        "properties": {"markdown": "### Business flow\n**bold** [runbook](https://example.org/r)"},
    }
    page, errors = _render(text)
    assert errors == []
    assert "<h3>Business flow</h3>" in page
    assert "<strong>bold</strong>" in page
    assert '<a href="https://example.org/r">runbook</a>' in page


def test_alarm_widget_shows_each_alarm_state() -> None:
    widget = {
        "type": "alarm",
        "x": 0,
        "y": 0,
        "width": 24,
        "height": 2,
        "properties": {
            "title": "Alarms",
            "alarms": [
                "arn:aws:cloudwatch:eu-central-1:123456789012:alarm:a-errors",
                "arn:aws:cloudwatch:eu-central-1:123456789012:alarm:a-latency",
            ],
        },
    }
    panels = Panels(alarms=[AlarmStatus("a-errors", "ALARM", "Threshold Crossed")])
    page, errors = _render(widget, panels=panels)
    assert errors == []
    cell = _cell(page, "Alarms")
    assert re.search(r'data-state="ALARM"[^>]*>.*a-errors', cell)
    assert re.search(r'data-state="INSUFFICIENT_DATA"[^>]*>.*a-latency', cell)


@pytest.mark.parametrize(
    ("widget", "says"),
    [
        (
            _metric(
                "Anomaly",
                [
                    [{"expression": "ANOMALY_DETECTION_BAND(m1)", "label": "band"}],
                    ["AWS/Lambda", "Invocations", *FN_ITEMS, {"id": "m1"}],
                ],
            ),
            "ANOMALY_DETECTION_BAND() is not supported",
        ),
        (
            _metric("Pie", [["AWS/Lambda", "Invocations", *FN_ITEMS]], view="pie"),
            "metric view 'pie' is not drawn",
        ),
        (
            {
                "type": "log",
                "x": 0,
                "y": 0,
                "width": 6,
                "height": 6,
                "properties": {"title": "Logs"},
            },
            "widget type 'log' is not drawn",
        ),
    ],
)
def test_what_cannot_be_drawn_says_why_in_place_and_in_the_errors(
    widget: dict[str, Any], says: str
) -> None:
    page, errors = _render(widget)
    assert len(errors) == 1
    assert says in errors[0]
    title = widget["properties"]["title"]
    assert says in html.unescape(_cell(page, title))
    assert 'id="errors"' in page


def test_a_widget_past_the_24_column_grid_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="past CloudWatch's 24-column grid"):
        parse_dashboard("d", {"widgets": [{"type": "text", "x": 20, "width": 6, "properties": {}}]})


def test_relative_ranges_parse_and_absolute_ones_are_refused() -> None:
    assert parse_relative_start("-PT3H").total_seconds() == 3 * 3600
    assert parse_relative_start("-P1DT30M").total_seconds() == 86400 + 1800
    with pytest.raises(TemplateError, match="relative ISO 8601"):
        parse_relative_start("2026-11-30T00:00:00Z")
