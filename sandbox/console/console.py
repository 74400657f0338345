"""The operations console of a running sandbox, served by Flask, and its snapshot file.

sources = ConsoleSources.of(sb, Path("cdk.out"))
write_snapshot(sources, Path(".sandbox/dashboard.html"))   # one self-contained file
with ConsoleServer(sources) as console:                      # http://127.0.0.1:<port>/
    print(console.url)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response
from plotly.offline import get_plotlyjs
from werkzeug.serving import WSGIRequestHandler, make_server

import contract
from sandbox import settings
from sandbox.alarms import INSUFFICIENT_DATA
from sandbox.console.dashboard import Dashboard, load_dashboard
from sandbox.console.deployed import DeployedService, deployed_attributes, pseudo_parameters
from sandbox.console.page import PLOTLY_SCRIPT_PATH, AlarmStatus, Panels, render_page
from sandbox.console.panels import AlarmBoard, read_outbox
from sandbox.metric_math import MetricSource
from sandbox.serving import BackgroundServer

REFRESH_SECONDS = 10
LEDGER_COLUMNS = (
    contract.PARTITION_KEY,
    contract.ATTR_SIZE,
    contract.ATTR_EVENT_TIME,
    contract.ATTR_EVENT_NAME,
    contract.ATTR_ETAG,
)


@dataclass
class ConsoleSources:
    """Everything the console reads, each read afresh on every page."""

    dashboard: Dashboard
    store: MetricSource
    alarms: Callable[[], Sequence[AlarmStatus]]
    outbox: Path
    ledger: Callable[[], Sequence[Mapping[str, Any]]] | None = None
    clock: Callable[[], float] = time.time
    ledger_columns: Sequence[str] = field(default=LEDGER_COLUMNS)

    @classmethod
    def of(
        cls,
        sb: Any,
        cdk_out: Path,
        outbox: Path,
        clock: Callable[[], float] = time.time,
        initial_alarm_state: str = INSUFFICIENT_DATA,
    ) -> ConsoleSources:
        """The console of a started sandbox.Sandbox: its dashboard, metrics, alarms (evaluated
        by sandbox.alarms at `clock`'s time, from `initial_alarm_state`), ledger."""
        service: DeployedService = sb
        physical, pseudo = deployed_attributes(service), pseudo_parameters(service)
        dashboard = load_dashboard(cdk_out, service.template.stack_name, physical, pseudo)
        board = AlarmBoard(
            service.template, physical, pseudo, sb.metrics, clock, initial_state=initial_alarm_state
        )
        return cls(
            dashboard=dashboard,
            store=sb.metrics,
            alarms=board.statuses,
            outbox=outbox,
            ledger=sb.ledger,
            clock=clock,
        )

    def render(self, *, inline_plotly: bool, refresh_seconds: int | None) -> tuple[str, list[str]]:
        panels = Panels(
            alarms=self.alarms(),
            notifications=read_outbox(self.outbox),
            ledger=None if self.ledger is None else self.ledger(),
            ledger_columns=self.ledger_columns,
        )
        return render_page(
            self.dashboard,
            self.store,
            self.clock(),
            panels,
            inline_plotly=inline_plotly,
            refresh_seconds=refresh_seconds,
        )


def write_snapshot(sources: ConsoleSources, path: Path) -> list[str]:
    """Write the console as one HTML file that opens offline (Plotly inlined); returns the
    problems found (widgets that could not be drawn), which the file also shows."""
    document, errors = sources.render(inline_plotly=True, refresh_seconds=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return errors


def console_app(sources: ConsoleSources, refresh_seconds: int = REFRESH_SECONDS) -> Flask:
    """The Flask app: the page at /, Plotly's bundled script beside it (no CDN)."""
    app = Flask("sandbox.console")
    plotly_js = get_plotlyjs()

    @app.get("/")
    def index() -> Response:
        document, _ = sources.render(inline_plotly=False, refresh_seconds=refresh_seconds)
        return Response(document, mimetype="text/html")

    @app.get(f"/{PLOTLY_SCRIPT_PATH}")
    def plotly() -> Response:
        response = Response(plotly_js, mimetype="application/javascript")
        response.cache_control.max_age = 3600
        return response

    return app


class _QuietRequestHandler(WSGIRequestHandler):
    """No log line per request: `up` reports progress on its own line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class ConsoleServer(BackgroundServer):
    """The console on 127.0.0.1 (a free port unless given), in a thread; a context manager."""

    def __init__(
        self, sources: ConsoleSources, port: int = 0, refresh_seconds: int = REFRESH_SECONDS
    ) -> None:
        app = console_app(sources, refresh_seconds)
        server = make_server(
            settings.SANDBOX_HOST, port, app, threaded=True, request_handler=_QuietRequestHandler
        )
        super().__init__(server, "sandbox-console")

    @property
    def url(self) -> str:
        return f"{super().url}/"
