"""`python -m sandbox`: run the service offline (up, demo) and operate it (ledger, redrive)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

import boto3

import contract
from sandbox import drill_cli, settings
from sandbox.console import commands as console_commands
from sandbox.faults import Faults
from sandbox.runtime import FunctionIdentity, FunctionWorker, lambda_context, redrive_failures
from sandbox.sandbox import Sandbox, plain_items
from sandbox.template import FunctionSpec, TemplateError

STATE_PATH = Path(settings.SANDBOX_STATE_DIR) / settings.SANDBOX_STATE_FILE
FUNCTION_LOG = Path(settings.SANDBOX_STATE_DIR) / "function.log"
# Keys that S3 encodes awkwardly in notifications: the handler must decode them all.
DEMO_KEYS = (
    "reports/2024/q1 summary.csv",
    "a+b=c.txt",
    "literal%2Bplus.txt",
    "ünïcödé/naïve café.txt",
    "deeply/nested/path/with/many/levels/file.json",
    "emoji 🚀 launch.png",
    "x" * 200 + ".log",
)
DEMO_TIMEOUT_SECONDS = 120.0
SPINNER = "|/-\\"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except TemplateError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="The upload ledger offline: moto on 127.0.0.1, the service deployed from "
        "cdk.out, the real handler invoked with Lambda's async semantics.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="serve the sandbox until Ctrl-C",
        description="Start the sandbox and serve "
        "until Ctrl-C; prints the endpoint and the variables to export for aws/boto3.",
    )
    _add_run_options(up)
    console_commands.add_console_option(up)
    up.set_defaults(command=_up)
    demo = commands.add_parser(
        "demo",
        help="upload sample files, print the ledger, stop",
        description="Start the sandbox, upload files with awkward names, wait until they are "
        "recorded, print the ledger and stop. Exit status 0 when every file was recorded.",
    )
    _add_run_options(demo)
    console_commands.add_dashboard_option(demo)
    demo.set_defaults(command=_demo)
    ledger = commands.add_parser(
        "ledger",
        help="print the ledger of the running sandbox",
        description=f"Print the ledger table of the sandbox started by `up` ({STATE_PATH}).",
    )
    ledger.set_defaults(command=_ledger)
    redrive = commands.add_parser(
        "redrive",
        help="replay the failure queue through the handler",
        description="Replay every event in the running sandbox's failure queue through the "
        "handler (from cdk.out, as `up` runs it); events recorded now leave the queue.",
    )
    redrive.add_argument(
        "--bypass-faults",
        action="store_true",
        help="talk to the emulator directly, not through `up`'s fault injection (the faults "
        "of a running sandbox are fixed at start: this is how you 'fix the cause')",
    )
    redrive.set_defaults(command=_redrive)
    drill = commands.add_parser(
        "drill",
        help="rehearse a release: canary, alarms, rollback, on a simulated clock",
        description="Release version 2 of the function (the build, optionally with a fault) "
        "as cdk.out configures CodeDeploy, its alarms and hook, on a simulated clock; print "
        "the minute-by-minute timeline, the alarm e-mails and a one-line verdict.",
    )
    drill_cli.add_arguments(drill)
    drill.set_defaults(command=drill_cli.run)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cdk-out",
        type=Path,
        default=Path("cdk.out"),
        help="synthesized app to deploy (default: cdk.out; `make synth`)",
    )
    parser.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=settings.SANDBOX_RETRY_DELAY_SECONDS,
        help="seconds before Lambda's first retry, doubling after (AWS: ~60)",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--dynamodb-error-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of DynamoDB calls failing with throttling/500 (0..1)",
    )
    faults.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of events delivered twice (0..1)",
    )
    faults.add_argument("--shuffle", action="store_true", help="deliver events out of order")
    faults.add_argument(
        "--dynamodb-access-denied",
        action="store_true",
        help="every DynamoDB call is denied (events end in the failure queue)",
    )
    faults.add_argument("--seed", type=int, default=0, help="random seed for the faults")


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(
        dynamodb_error_rate=args.dynamodb_error_rate,
        duplicate_rate=args.duplicate_rate,
        shuffle=args.shuffle,
        seed=args.seed,
        dynamodb_access_denied=args.dynamodb_access_denied,
    )


def _sandbox(args: argparse.Namespace) -> Sandbox:
    if not (args.cdk_out / "manifest.json").is_file():
        raise TemplateError(f"{args.cdk_out} not found: run `make synth` first (or `make demo`)")
    return Sandbox(
        args.cdk_out, _faults(args), args.retry_delay, port=args.port, function_log=FUNCTION_LOG
    )


class _Progress:
    """A one-line spinner on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self) -> None:
        self._tick = 0
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, line: str) -> None:
        self._tick += 1
        if self._tty:
            print(f"\r{SPINNER[self._tick % len(SPINNER)]} {line}\033[K", end="", file=sys.stderr)
        elif time.monotonic() - self._last > 2:
            self._last = time.monotonic()
            print(f"... {line}", file=sys.stderr)

    def done(self) -> None:
        if self._tty:
            print("\r\033[K", end="", file=sys.stderr)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starting us in the background leaves it ignored.
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _up(args: argparse.Namespace) -> int:
    print("Starting the sandbox...", file=sys.stderr)
    with _sigterm_as_interrupt(), _sandbox(args) as sb:
        _write_state(sb)
        console = console_commands.serve_console(sb, args)
        try:
            print(f"Sandbox running at {sb.endpoint_url}")
            print(f"  console        {console.url}")
            print(f"  bucket         {sb.bucket_name}\n  table          {sb.table_name}")
            print(f"  failure queue  {sb.failure_queue_url}\n  function log   {FUNCTION_LOG}")
            print("Point the AWS CLI and boto3 at it:")
            for name, value in sb.environment().items():
                print(f"  export {name}={value}")
            print(f"Try: aws s3 cp README.md s3://{sb.bucket_name}/ && python -m sandbox ledger")
            print("Ctrl-C stops it.", flush=True)
            progress = _Progress()
            while True:
                progress(sb.progress_line())
                time.sleep(0.2)
        except KeyboardInterrupt:
            print("\nStopping the sandbox...", file=sys.stderr)
        finally:
            console.stop()
            STATE_PATH.unlink(missing_ok=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    print("Starting the sandbox (moto on 127.0.0.1, deployed from cdk.out)...", file=sys.stderr)
    with _sandbox(args) as sb:
        print(f"Uploading {len(DEMO_KEYS)} files to s3://{sb.bucket_name}/", file=sys.stderr)
        for key in DEMO_KEYS:
            sb.upload(key, f"demo content of {key}\n".encode())
        # A second version of one key: the ledger must keep the newer one.
        sb.upload(DEMO_KEYS[0], b"second version, longer than the first one\n")
        progress = _Progress()
        sb.wait_until_idle(DEMO_TIMEOUT_SECONDS, progress)
        progress.done()
        items = sb.ledger()
        print(format_table(items))
        failures = sb.failures()
        print(
            f"\n{len(items)} ledger items, {len(failures)} events in the failure queue "
            f"({sb.progress_line()})"
        )
        missing = set(DEMO_KEYS) - {item[contract.PARTITION_KEY] for item in items}
        drawn = console_commands.write_dashboard(sb, args)
    if missing:
        print(f"sandbox: not recorded: {sorted(missing)}", file=sys.stderr)
        return 1
    return 0 if drawn else 1


def format_table(items: list[dict[str, Any]]) -> str:
    """The ledger as a text table, one row per item."""
    columns = (
        contract.PARTITION_KEY,
        contract.ATTR_SIZE,
        contract.ATTR_EVENT_TIME,
        contract.ATTR_EVENT_NAME,
        contract.ATTR_ETAG,
    )
    rows = [[_cell(item.get(column)) for column in columns] for item in items]
    widths = [max([len(col)] + [len(row[i]) for row in rows]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:28] + "..." + text[-29:]


# `ledger` and `redrive` work on the sandbox `up` runs, found through its state file.
def _write_state(sb: Sandbox) -> None:
    runtime = sb._running_runtime()
    state = {
        "endpoint_url": sb.endpoint_url,
        "region": sb.region,
        "bucket_name": sb.bucket_name,
        "table_name": sb.table_name,
        "failure_queue_url": sb.failure_queue_url,
        "function_environment": sb.function_environment,
        "function": {**asdict(runtime.spec), "asset_dir": str(runtime.spec.asset_dir)},
        "identity": asdict(runtime.identity),
    }
    STATE_PATH.parent.mkdir(parents=True, exist_ok=True)
    STATE_PATH.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _read_state() -> dict[str, Any] | None:
    if not STATE_PATH.is_file():
        print(
            f"sandbox: no sandbox is running ({STATE_PATH} is missing): start one with "
            "`python -m sandbox up` in another terminal",
            file=sys.stderr,
        )
        return None
    state: dict[str, Any] = json.loads(STATE_PATH.read_text(encoding="utf-8"))
    return state


def _client(state: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=state["endpoint_url"],
        region_name=state["region"],
        aws_access_key_id=settings.SANDBOX_ACCESS_KEY,
        aws_secret_access_key=settings.SANDBOX_SECRET_KEY,
    )


def _ledger(args: argparse.Namespace) -> int:
    state = _read_state()
    if state is None:
        return 1
    dynamodb = _client(state, "dynamodb")
    pages = dynamodb.get_paginator("scan").paginate(TableName=state["table_name"])
    items = plain_items(item for page in pages for item in page["Items"])
    print(format_table(items))
    print(f"\n{len(items)} ledger items")
    return 0


def _redrive(args: argparse.Namespace) -> int:
    state = _read_state()
    if state is None:
        return 1
    function = state["function"]
    spec = FunctionSpec(**{**function, "asset_dir": Path(function["asset_dir"])})
    identity = FunctionIdentity(**state["identity"])
    environment = dict(state["function_environment"])
    if args.bypass_faults:
        environment["AWS_ENDPOINT_URL"] = state["endpoint_url"]
    worker = FunctionWorker(spec, environment, FUNCTION_LOG.open("ab"))
    try:
        sqs = _client(state, "sqs")

        def invoke(event: Any) -> dict[str, Any]:
            return worker.invoke(event, lambda_context(spec, identity), float(spec.timeout_seconds))

        redriven = redrive_failures(sqs, state["failure_queue_url"], invoke)
        left = sqs.get_queue_attributes(
            QueueUrl=state["failure_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    finally:
        worker.close()
    print(f"Redrove {redriven} events; {left} still in the failure queue")
    return 0
