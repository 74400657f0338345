"""``python -m bench [--quick] [--output PATH] [--cdk-out DIR]``: measure, print, write JSON.

Sections: warm cost per event (1, 10, 100 records) against a near-zero stub DynamoDB,
then per 1-record event against moto and dynalite, each next to the bare baseline; cold
start next to the baseline; synth time next to a one-stack app; bursts through the local
sandbox (without and with faults); and the estimated cost per million uploads. Each
figure is printed next to its target. ``--quick`` runs tiny sizes (for tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import contract
from bench.burst import measure_burst
from bench.coldstart import measure_cold_start
from bench.cost import estimate
from bench.dynalite import dynalite_endpoint
from bench.emulator import dynamodb_endpoint
from bench.report import render
from bench.settings import (
    DEFAULT_CDK_OUT,
    DEFAULT_OUTPUT,
    FULL,
    QUICK,
    QUICK_OUTPUT,
    REPO_ROOT,
    Sizes,
)
from bench.stub_dynamodb import stub_dynamodb_endpoint
from bench.synth import measure_synth
from bench.warm import measure_warm
from sandbox.arguments import OneLineParser, output_file
from sandbox.template import TemplateError, load_service_template
from scripts.heartbeat import INTERVAL_SECONDS, still_running


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m bench",
        description="Measure the handler's warm and cold cost, synth time and the sandbox's "
        "throughput; print each figure next to its target and write the results as JSON.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--output",
        type=output_file,
        metavar="PATH",
        help=f"JSON results file (default: {_relative(DEFAULT_OUTPUT)}; with --quick "
        f"{_relative(QUICK_OUTPUT)}, so a smoke run leaves the real results alone)",
    )
    parser.add_argument(
        "--cdk-out",
        type=Path,
        default=DEFAULT_CDK_OUT,
        metavar="DIR",
        help="the synthesized app (cloud assembly) whose service stack the sandbox burst "
        f"deploys (default: {_relative(DEFAULT_CDK_OUT)}; `make synth` makes it); checked "
        "before anything is measured",
    )
    parser.add_argument(
        "--skip-synth",
        action="store_true",
        help="leave out the synth-time section (it synthesizes the whole app and a "
        "one-stack app, each in fresh processes)",
    )
    parser.add_argument(
        "--skip-burst",
        action="store_true",
        help="leave out the sandbox burst section: then no --cdk-out is needed",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        # A string goes through `type` as a default would: its folder (bench-results/) is
        # made now, before the run.
        args.output = output_file(str(QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT))
    # Checked before minutes of measuring, not when the burst section reaches it, and by
    # the sandbox's own loader: the bench refuses what the sandbox would, in its words.
    if not args.skip_burst:
        try:
            load_service_template(args.cdk_out)
        except TemplateError as error:
            parser.error(f"argument --cdk-out: {error} (or pass --skip-burst)")
    return args


def _relative(path: Path) -> str:
    """`path` as the help shows it: from the repository's root when it is inside it."""
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


def _git_commit() -> str:
    completed = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 -- git from PATH, no shell
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def _meta(quick: bool) -> dict[str, Any]:
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "quick": quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        # 1, 5 and 15-minute load averages as the run starts: figures from a loaded
        # machine (another build, a test run) are not comparable with a quiet one's.
        "load_average_at_start": list(os.getloadavg()),
    }


def _burst(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    try:
        return measure_burst(sizes, args.cdk_out)
    except TemplateError as error:
        # What the argument check can't see before deploying (a reference the sandbox can't
        # resolve) or a cdk.out changed since: no traceback, and the figures measured so far
        # are still printed and written.
        return {"failed": f"argument --cdk-out: {error}"}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every section in turn; each says on stderr that it runs, and for how long."""
    sizes = QUICK if args.quick else FULL
    results: dict[str, Any] = {"meta": _meta(args.quick)}
    floor = "warm cost per event against a near-zero stub DynamoDB (the honest floor)"
    with _section(floor), stub_dynamodb_endpoint() as endpoint:
        results["warm"] = measure_warm(endpoint, sizes)
    # The same 1-record events against two emulators: the ratio moves with the
    # emulator's speed, which is why the stub's figures are the headline.
    results["warm_by_emulator"] = {}
    for name, endpoint_of in (("moto", dynamodb_endpoint), ("dynalite", dynalite_endpoint)):
        with _section(f"warm cost per 1-record event against {name}"), endpoint_of() as endpoint:
            results["warm_by_emulator"][name] = measure_warm(endpoint, sizes, (1,))
    with _section("cold start (fresh processes)"):
        results["cold_start"] = measure_cold_start(sizes)
    if args.skip_synth:
        results["synth"] = {"skipped": "--skip-synth"}
    else:
        with _section("synth time (fresh processes)"):
            results["synth"] = measure_synth(sizes)
    if args.skip_burst:
        results["burst"] = {"skipped": "--skip-burst"}
    else:
        with _section("burst through the sandbox"):
            results["burst"] = _burst(args, sizes)
    # Lambda bills wall time, which includes waiting on DynamoDB: moto's few milliseconds
    # stand in for DynamoDB's latency better than the stub's none.
    one_record = results["warm_by_emulator"]["moto"]["by_records_per_event"]["1"]["handler"]
    results["cost_per_million_uploads"] = estimate(
        contract.LAMBDA_MEMORY_MB,
        one_record["mean_ms_per_event"],
        one_record["log_bytes_per_event"],
    )
    results["meta"]["load_average_at_end"] = list(os.getloadavg())
    return results


@contextmanager
def _section(label: str, interval: float = INTERVAL_SECONDS) -> Iterator[None]:
    """``bench: LABEL...`` now, ``... LABEL: still running (N s)`` every ``interval``
    seconds while the block runs (the build steps' heartbeat), its duration at the end."""
    print(f"bench: {label}...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with still_running(label, interval):
        yield
    print(f"    done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0; 2 for a usage error, before the run or (a --cdk-out the sandbox
    can't deploy) after it, once the other sections' results are written."""
    args = _parse_args(argv)
    results = run(args)
    print(render(results))  # first: a write that fails still leaves the figures on screen
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nResults written to {args.output}")
    if "failed" in results["burst"]:
        print(f"python -m bench: error: {results['burst']['failed']}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
