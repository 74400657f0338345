"""The console's part of `python -m sandbox`: the `--dashboard FILE.html` option and the
console that `up` serves. Kept here so the commands stay a table of contents."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import arguments, settings
from sandbox.alarms import INSUFFICIENT_DATA
from sandbox.console.console import ConsoleServer, ConsoleSources, write_snapshot

OUTBOX_DIR = Path(settings.SANDBOX_STATE_DIR) / "outbox"


def add_dashboard_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dashboard",
        type=arguments.output_file,
        metavar="FILE.html",
        help="at the end, write the stage's dashboard (from cdk.out, with this run's metrics), "
        "alarms, notifications and ledger as one HTML file that opens offline",
    )


def add_console_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--console-port",
        type=arguments.port,
        default=0,
        help="port of the operations console on 127.0.0.1 (default: a free one)",
    )


def sources(
    sb: Any,
    args: argparse.Namespace,
    outbox: Path = OUTBOX_DIR,
    clock: Callable[[], float] = time.time,
    initial_alarm_state: str = INSUFFICIENT_DATA,
) -> ConsoleSources:
    """The console of a started sandbox, from the same cdk.out it was deployed from."""
    return ConsoleSources.of(
        sb, args.cdk_out, outbox, clock=clock, initial_alarm_state=initial_alarm_state
    )


def write_dashboard(
    sb: Any,
    args: argparse.Namespace,
    outbox: Path = OUTBOX_DIR,
    clock: Callable[[], float] = time.time,
    initial_alarm_state: str = INSUFFICIENT_DATA,
) -> bool:
    """Write `--dashboard` if given, as of `clock()` (a drill's: the end of its simulated
    time), alarms starting in `initial_alarm_state` (a drill's: the state its alarms start
    in); False (after saying why) when a widget can't be drawn."""
    path: Path | None = args.dashboard
    if path is None:
        return True
    if sb.service_metrics is not None:
        sb.service_metrics.sample()  # queue depth and bucket size as of now
    errors = write_snapshot(sources(sb, args, outbox, clock, initial_alarm_state), path)
    for error in errors:
        print(f"sandbox: dashboard: {error}", file=sys.stderr)
    print(f"Dashboard snapshot: {path} (open it in a browser; it needs no network)")
    return not errors


def serve_console(sb: Any, args: argparse.Namespace) -> ConsoleServer:
    """Start the live console of a running sandbox (the caller stops it)."""
    console = ConsoleServer(sources(sb, args), port=args.console_port)
    console.start()
    return console
