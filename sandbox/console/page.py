"""The console page: the dashboard drawn on its own grid, then alarms, notifications, ledger.

One function, :func:`render_page`, makes the whole HTML document for both uses: the live
console (`python -m sandbox up`, Plotly's script served beside it, the page reloading
itself) and the snapshot (`--dashboard FILE.html`, Plotly's script inlined, so the file
opens with no network). Plotly draws the graphs; Python-Markdown renders text widgets.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import markdown
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from sandbox.console.dashboard import Dashboard, Widget
from sandbox.console.graphs import Line, widget_lines
from sandbox.metric_math import ExpressionError, MetricSource, Window

GRID_ROW_PX = 46  # one height unit of CloudWatch's grid, as its console draws it
PLOTLY_SCRIPT_PATH = "plotly.min.js"
# CloudWatch's alarm state colours.
STATE_COLOURS = {"ALARM": "#d13212", "OK": "#1d8102", "INSUFFICIENT_DATA": "#687078"}


@dataclass(frozen=True)
class AlarmStatus:
    """An alarm as the console lists it (state per CloudWatch's DescribeAlarms)."""

    name: str
    state: str
    reason: str
    runbook_url: str = ""
    description: str = ""
    updated: str = ""


@dataclass(frozen=True)
class Notification:
    """One message of the outbox (an SNS message as delivered)."""

    name: str
    subject: str
    body: str


@dataclass
class Panels:
    """What the console shows beside the dashboard."""

    alarms: Sequence[AlarmStatus] = ()
    notifications: Sequence[Notification] = ()
    ledger: Sequence[Mapping[str, Any]] | None = None
    ledger_columns: Sequence[str] = ()
    errors: list[str] = field(default_factory=list)


def render_page(
    dashboard: Dashboard,
    store: MetricSource,
    now: float,
    panels: Panels,
    *,
    inline_plotly: bool,
    refresh_seconds: int | None = None,
) -> tuple[str, list[str]]:
    """(HTML document, errors): every widget drawn; a widget that can't be says why, in place
    and in `errors` (callers print them), so nothing is silently missing."""
    window = Window(now - dashboard.range_seconds(), now)
    errors: list[str] = []
    cells = [
        _widget_cell(i, widget, store, window, panels=panels, errors=errors)
        for i, widget in enumerate(dashboard.widgets)
    ]
    script = (
        f"<script>{get_plotlyjs()}</script>"
        if inline_plotly
        else f'<script src="{PLOTLY_SCRIPT_PATH}"></script>'
    )
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds else ""
    taken = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    document = _TEMPLATE.format(
        title=html.escape(dashboard.name),
        refresh=refresh,
        style=_STYLE,
        plotly=script,
        range=html.escape(f"{dashboard.start} to {dashboard.end or 'now'}"),
        taken=taken,
        cells="\n".join(cells),
        errors=_errors_section(errors + panels.errors),
        alarms=_alarms_section(panels.alarms),
        outbox=_outbox_section(panels.notifications),
        ledger=_ledger_section(panels.ledger, panels.ledger_columns),
    )
    return document, errors


def _widget_cell(
    index: int,
    widget: Widget,
    store: MetricSource,
    window: Window,
    *,
    panels: Panels,
    errors: list[str],
) -> str:
    style = (
        f"grid-column:{widget.x + 1}/span {widget.width};"
        f"grid-row:{widget.y + 1}/span {widget.height}"
    )
    try:
        content = _widget_content(index, widget, store, window, panels)
    except ExpressionError as error:
        message = f"widget {widget.title or widget.type!r}: {error}"
        errors.append(message)
        content = f'<div class="widget-error">{html.escape(message)}</div>'
    title = f'<h3 class="widget-title">{html.escape(widget.title)}</h3>' if widget.title else ""
    return (
        f'<section class="widget widget-{html.escape(widget.type)}" style="{style}" '
        f'data-title="{html.escape(widget.title)}">{title}{content}</section>'
    )


def _widget_content(
    index: int, widget: Widget, store: MetricSource, window: Window, panels: Panels
) -> str:
    if widget.type == "text":
        return str(markdown.markdown(str(widget.properties.get("markdown", ""))))
    if widget.type == "alarm":
        return _alarm_widget(widget, panels.alarms)
    if widget.type == "metric":
        lines = widget_lines(widget.properties, store, window)
        view = widget.properties.get("view", "timeSeries")
        if view == "singleValue":
            return _single_value(lines)
        if view == "timeSeries":
            return _time_series(index, widget, lines, window)
        raise ExpressionError(f"metric view {view!r} is not drawn by the sandbox console")
    raise ExpressionError(f"widget type {widget.type!r} is not drawn by the sandbox console")


def _alarm_widget(widget: Widget, alarms: Sequence[AlarmStatus]) -> str:
    by_name = {alarm.name: alarm for alarm in alarms}
    items = []
    for arn in widget.properties.get("alarms", []):
        name = str(arn).rsplit(":alarm:", 1)[-1]
        alarm = by_name.get(name)
        state = alarm.state if alarm else "INSUFFICIENT_DATA"
        colour = STATE_COLOURS.get(state, STATE_COLOURS["INSUFFICIENT_DATA"])
        items.append(
            f'<li class="alarm-tile" data-state="{state}" style="border-color:{colour}">'
            f'<span class="state" style="background:{colour}">{state}</span> '
            f"{html.escape(name)}</li>"
        )
    return f'<ul class="alarm-tiles">{"".join(items)}</ul>'


def _single_value(lines: Sequence[Line]) -> str:
    values = []
    for line in lines:
        latest = f"{line.points[-1][1]:.4g}" if line.points else "-"
        values.append(
            f'<div class="single-value"><span class="value">{latest}</span>'
            f'<span class="label">{html.escape(line.label)}</span></div>'
        )
    return f'<div class="single-values">{"".join(values)}</div>'


def _time_series(index: int, widget: Widget, lines: Sequence[Line], window: Window) -> str:
    figure = go.Figure()
    for line in lines:
        figure.add_trace(
            go.Scatter(
                x=[datetime.fromtimestamp(t, UTC) for t, _ in line.points],
                y=[v for _, v in line.points],
                name=line.label,
                mode="lines+markers",
                marker={"size": 4},
            )
        )
    left = widget.properties.get("yAxis", {}).get("left", {})
    figure.update_layout(
        margin={"l": 48, "r": 8, "t": 4, "b": 24},
        showlegend=True,
        legend={"orientation": "h", "y": -0.25, "font": {"size": 10}},
        xaxis={
            "type": "date",
            "range": [
                datetime.fromtimestamp(window.start, UTC),
                datetime.fromtimestamp(window.end, UTC),
            ],
        },
        yaxis={"title": {"text": left.get("label", "")}, "rangemode": "tozero"},
        template="plotly_white",
    )
    if "min" in left:
        figure.update_yaxes(range=[left["min"], None])
    empty = "" if any(line.points for line in lines) else '<p class="no-data">No data</p>'
    graph = pio.to_html(
        figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=f"graph-{index}",
        default_height="100%",
        default_width="100%",
        config={"displayModeBar": False, "responsive": True},
    )
    points = sum(len(line.points) for line in lines)
    return f'<div class="graph" data-points="{points}">{empty}{graph}</div>'


def _errors_section(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    items = "".join(f"<li>{html.escape(e)}</li>" for e in errors)
    return f'<section id="errors"><h2>Problems</h2><ul>{items}</ul></section>'


def _alarms_section(alarms: Sequence[AlarmStatus]) -> str:
    rows = []
    for alarm in alarms:
        colour = STATE_COLOURS.get(alarm.state, STATE_COLOURS["INSUFFICIENT_DATA"])
        runbook = (
            f'<a href="{html.escape(alarm.runbook_url)}">runbook</a>' if alarm.runbook_url else ""
        )
        rows.append(
            f'<tr data-alarm="{html.escape(alarm.name)}"><td>{html.escape(alarm.name)}</td>'
            f'<td><span class="state" style="background:{colour}">{alarm.state}</span></td>'
            f"<td>{html.escape(alarm.reason)}</td><td>{runbook}</td>"
            f"<td>{html.escape(alarm.updated)}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="5">No alarms in the template.</td></tr>'
    return (
        '<section id="alarms"><h2>Alarms</h2><table><thead><tr><th>Alarm</th><th>State</th>'
        f"<th>Reason</th><th>Runbook</th><th>Updated</th></tr></thead><tbody>{body}</tbody>"
        "</table></section>"
    )


def _outbox_section(notifications: Sequence[Notification]) -> str:
    items = "".join(
        f'<details class="notification"><summary>{html.escape(n.subject)} '
        f'<span class="file">{html.escape(n.name)}</span></summary>'
        f"<pre>{html.escape(n.body)}</pre></details>"
        for n in notifications
    )
    empty = "" if notifications else "<p>No notifications sent.</p>"
    return f'<section id="outbox"><h2>Notifications (outbox)</h2>{empty}{items}</section>'


def _ledger_section(items: Sequence[Mapping[str, Any]] | None, columns: Sequence[str]) -> str:
    if items is None:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(item.get(c)))}</td>" for c in columns) + "</tr>"
        for item in items
    )
    return (
        f'<section id="ledger"><h2>Ledger ({len(items)} items)</h2><table><thead><tr>{head}'
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f2f3f3;color:#16191f}
header{background:#232f3e;color:#fff;padding:8px 16px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0} header nav a{color:#fff;margin-right:12px}
main{padding:12px}
#grid{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:ROW_PXpx;gap:6px}
.widget{background:#fff;border:1px solid #d5dbdb;overflow:hidden;display:flex;
 flex-direction:column;padding:4px 8px;box-sizing:border-box;min-width:0}
.widget-text{background:transparent;border:none}
.widget-title{font-size:13px;margin:2px 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.widget-text h1{font-size:22px;margin:4px 0}.widget-text h3{font-size:15px;margin:6px 0}
.widget-text p{font-size:12px;margin:2px 0}
.graph{flex:1;min-height:0;position:relative}.graph>div{height:100%}
.no-data{position:absolute;top:35%;width:100%;text-align:center;color:#687078;z-index:1}
.widget-error{color:#d13212;font-size:12px}
.alarm-tiles{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:6px}
.alarm-tile{border-left:6px solid;padding:4px 8px;font-size:12px;background:#fafafa}
.state{color:#fff;padding:1px 6px;border-radius:3px;font-size:11px}
.single-values{display:flex;gap:24px;align-items:center;flex:1}
.single-value .value{font-size:32px;display:block}.single-value .label{font-size:12px}
#alarms,#outbox,#ledger,#errors{background:#fff;margin:12px;padding:8px 16px}
table{border-collapse:collapse;font-size:12px;width:100%}
td,th{border-bottom:1px solid #eaeded;padding:3px 6px;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;font-size:12px}
""".replace("ROW_PX", str(GRID_ROW_PX))

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<title>{title}</title><style>{style}</style>{plotly}</head>
<body><header><h1>{title}</h1><span>{range} · as of {taken}</span>
<nav><a href="#grid">Dashboard</a><a href="#alarms">Alarms</a><a href="#outbox">Notifications</a>
<a href="#ledger">Ledger</a></nav></header>
<main>{errors}<div id="grid">
{cells}
</div></main>
{alarms}{outbox}{ledger}
</body></html>
"""
