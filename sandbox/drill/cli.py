"""`python -m sandbox drill`: rehearse a release, print the timeline, e-mails and verdict."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sandbox import arguments, settings
from sandbox.alarms import UnsupportedAlarmError
from sandbox.console import commands as console_commands
from sandbox.drill.fault import Fault
from sandbox.drill.rehearsal import (
    INITIAL_ALARM_STATE,
    PROFILES,
    DrillOptions,
    DrillResult,
    Rehearsal,
)
from sandbox.drill.report import render_emails, render_timeline, verdict, write_json
from sandbox.template import TemplateError

OUTBOX_DIR = Path(settings.SANDBOX_STATE_DIR) / "outbox"
WORK_DIR = Path(settings.SANDBOX_STATE_DIR) / "drill"
EXPECTATIONS = ("rollback", "success")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cdk-out", type=Path, default=Path("cdk.out"), help="synthesized app (default: cdk.out)"
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        default=Fault(),
        metavar="FAULT",
        help="what is wrong with version 2: errors:SHARE, latency:MS, crash or keys:GLOB "
        "(default: a clean release)",
    )
    parser.add_argument(
        "--background-errors",
        type=arguments.share,
        default=0.0,
        metavar="SHARE",
        help="share of invocations failing in both versions (0..1)",
    )
    parser.add_argument(
        "--uploads-per-minute",
        type=arguments.uploads_per_minute,
        default=60.0,
        metavar="N",
        help=f"traffic (default: 60, at most {arguments.MAX_UPLOADS_PER_MINUTE:,})",
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default="steady", help="steady or bursty traffic"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for routing, traffic and faults")
    parser.add_argument(
        "--json",
        type=arguments.output_file,
        metavar="FILE",
        help="write the timeline and verdict as JSON",
    )
    parser.add_argument(
        "--expect",
        choices=EXPECTATIONS,
        help="exit 0 only if the release ended so (rollback: version 1 live again; "
        "success: 100%% on version 2), else 1",
    )
    parser.add_argument(
        "--outbox",
        type=Path,
        default=OUTBOX_DIR,
        help=f"where messages land (default: {OUTBOX_DIR})",
    )
    parser.add_argument(
        "--model",
        action="store_true",
        help="model the handler instead of running it (fast, for calibration; see README)",
    )
    parser.add_argument("--quiet", action="store_true", help="print the verdict only")
    console_commands.add_dashboard_option(parser)


def _fault(text: str) -> Fault:
    """`--fault` as argparse's type: a bad spec is a usage error before the drill starts."""
    try:
        return Fault.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--fault {text}: ")) from None


def run(args: argparse.Namespace) -> int:
    """The drill command; exit status 0/1 per --expect, 2 for bad input."""
    try:
        options = DrillOptions(
            fault=args.fault,
            background_errors=args.background_errors,
            uploads_per_minute=args.uploads_per_minute,
            profile=args.profile,
            seed=args.seed,
            model=args.model,
        )
    except ValueError as error:
        print(f"sandbox drill: {error}", file=sys.stderr)
        return 2
    began = time.monotonic()
    try:
        result, drawn = _rehearse(args, options)
    except (TemplateError, UnsupportedAlarmError) as error:
        print(f"sandbox drill: {error}", file=sys.stderr)
        return 2
    line = verdict(result, options)
    if not args.quiet:
        background = (
            f", {options.background_errors:.1%} background errors"
            if options.background_errors
            else ""
        )
        print(
            f"Release drill: version 2 = the build with {options.fault.describe()}{background}; "
            f"{options.uploads_per_minute:g} uploads/minute ({options.profile}); simulated clock.\n"
        )
        print(render_timeline(result.rows, result.gating))
        if result.notifications:
            print(f"\nMessages to the alarm topic ({args.outbox}/):\n")
            print(render_emails(result, _region(result)))
        if result.failure_queue:
            print(f"\n{result.failure_queue} event(s) went to the failure queue after all retries.")
    print(f"\n{line}\n(drill took {time.monotonic() - began:.1f} s of wall time)")
    if args.json:
        write_json(args.json, result, options)
    if not drawn:
        return 1
    if args.expect is None:
        return 0
    return 0 if result.outcome == args.expect else 1


def _rehearse(args: argparse.Namespace, options: DrillOptions) -> tuple[DrillResult, bool]:
    """(result, whether `--dashboard` drew every widget): with --dashboard, the drill runs in
    a sandbox kept open long enough to draw the dashboard as of the drill's last minute."""
    rehearsal = Rehearsal(args.cdk_out, options, args.outbox, WORK_DIR)
    if args.dashboard is None:
        return rehearsal.run(), True
    from sandbox.sandbox import Sandbox  # noqa: PLC0415 - moto loads only when needed

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    log = WORK_DIR / "function.log"
    with Sandbox(args.cdk_out, function_log=log, start_runtime=False) as sandbox:
        result = rehearsal.run(sandbox)
        end = result.minutes[-1].start + 60 if result.minutes else time.time()
        drawn = console_commands.write_dashboard(
            sandbox, args, args.outbox, lambda: end, INITIAL_ALARM_STATE
        )
    return result, drawn


def _region(result: DrillResult) -> str:
    """The Region of the alarm topic (the e-mail's console links point there)."""
    for notification in result.notifications:
        parts = str(notification.topic_arn).split(":")
        if len(parts) > 3:
            return parts[3]
    return settings.SANDBOX_FALLBACK_REGION
