"""`python -m sandbox`: run the service offline (up, demo) and operate it (ledger, redrive)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import contract
from sandbox import arguments, environment_error_line, settings
from sandbox.console import commands as console_commands
from sandbox.control import (
    STATE_PATH,
    AlreadyRunningError,
    ControlServer,
    NotRunningError,
    RunningSandbox,
    SandboxRequestError,
    remove_state,
    write_state,
)
from sandbox.drill import cli as drill_cli
from sandbox.faults import Faults
from sandbox.sandbox import Sandbox
from sandbox.template import TemplateError, stale_sources

FUNCTION_LOG = Path(settings.SANDBOX_STATE_DIR) / "function.log"
# The repository the sandbox was started from: its handler sources, to spot a stale cdk.out.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
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
    except (NotRunningError, AlreadyRunningError, SandboxRequestError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1
    except ImportError as error:  # the emulator's process can't import moto
        print(environment_error_line(error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside the serve loop (starting, stopping)
        print("sandbox: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = arguments.OneLineParser(
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
        description="Print the ledger table of the sandbox that `up` runs in this folder.",
    )
    ledger.set_defaults(command=_ledger)
    redrive = commands.add_parser(
        "redrive",
        help="replay the failure queue through the handler",
        description="Replay every event in the running sandbox's failure queue through its "
        "handler; events recorded now leave the queue. Exit status 1 when events remain.",
    )
    redrive.add_argument(
        "--bypass-faults",
        action="store_true",
        help="the function talks to the emulator directly, past the injected faults "
        "(or switch them off first: `python -m sandbox faults --none`)",
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
    faults = commands.add_parser(
        "faults",
        help="show or change the running sandbox's faults",
        description="Show the faults the running sandbox injects; with options, change "
        "them (options not given keep their value; --none switches every fault off).",
    )
    faults.add_argument("--none", action="store_true", help="switch every fault off first")
    _add_fault_options(faults, keep_by_default=True)
    faults.set_defaults(command=_faults_command)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cdk-out",
        type=Path,
        default=Path("cdk.out"),
        help="synthesized app to deploy (default: cdk.out; `make synth`)",
    )
    parser.add_argument(
        "--port", type=arguments.port, default=0, help="emulator port (default 0: a free one)"
    )
    parser.add_argument(
        "--retry-delay",
        type=arguments.seconds,
        default=settings.SANDBOX_RETRY_DELAY_SECONDS,
        metavar="SECONDS",
        help="seconds before Lambda's first retry, doubling after (AWS: ~60)",
    )
    _add_fault_options(parser, keep_by_default=False)


def _add_fault_options(parser: argparse.ArgumentParser, *, keep_by_default: bool) -> None:
    """The fault flags; with keep_by_default, an option not given keeps the current value."""
    faults = parser.add_argument_group("fault injection")
    default = Faults()

    def initial(value: Any) -> Any:
        return None if keep_by_default else value

    faults.add_argument(
        "--dynamodb-error-rate",
        type=arguments.share,
        default=initial(default.dynamodb_error_rate),
        metavar="SHARE",
        help="share of DynamoDB calls failing with throttling/500 (0..1)",
    )
    faults.add_argument(
        "--duplicate-rate",
        type=arguments.share,
        default=initial(default.duplicate_rate),
        metavar="SHARE",
        help="share of events delivered twice (0..1)",
    )
    toggle: Any = argparse.BooleanOptionalAction if keep_by_default else "store_true"
    faults.add_argument(
        "--shuffle", action=toggle, default=initial(False), help="deliver events out of order"
    )
    faults.add_argument(
        "--dynamodb-access-denied",
        action=toggle,
        default=initial(False),
        help="every DynamoDB call is denied (events end in the failure queue)",
    )
    faults.add_argument(
        "--seed", type=int, default=initial(default.seed), help="random seed for the faults"
    )


FAULT_FIELDS = (
    "dynamodb_error_rate",
    "duplicate_rate",
    "shuffle",
    "seed",
    "dynamodb_access_denied",
)


def _faults(args: argparse.Namespace, current: Faults | None = None) -> Faults:
    """The faults the options ask for; options left out keep `current`'s values."""
    base = current or Faults()
    values = {name: getattr(args, name) for name in FAULT_FIELDS}
    return Faults(**{k: getattr(base, k) if v is None else v for k, v in values.items()})


def _sandbox(args: argparse.Namespace) -> Sandbox:
    if not (args.cdk_out / "manifest.json").is_file():
        raise TemplateError(f"{args.cdk_out} not found: run `make synth` first (or `make demo`)")
    sandbox = Sandbox(
        args.cdk_out, _faults(args), args.retry_delay, port=args.port, function_log=FUNCTION_LOG
    )
    if (SOURCE_ROOT / contract.HANDLER_PACKAGE).is_dir():
        changed = stale_sources(sandbox.template.function.asset_dir, SOURCE_ROOT)
        if changed:
            print(
                f"sandbox: warning: {args.cdk_out} is older than the handler's sources "
                f"({', '.join(changed)} changed since): the sandbox runs the code in "
                f"{args.cdk_out}; run `make synth` to run yours",
                file=sys.stderr,
            )
    return sandbox


@contextlib.contextmanager
def _started(args: argparse.Namespace) -> Iterator[Sandbox]:
    """The sandbox of the run options, started; a port already in use is one line."""
    sandbox = _sandbox(args)
    try:
        sandbox.start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise AlreadyRunningError(
            f"port {args.port} is in use by another program: choose another with --port, "
            "or --port 0 for a free one"
        ) from None
    try:
        yield sandbox
    finally:
        sandbox.close()


class _Progress:
    """A one-line spinner on stderr; when stderr is not a terminal (a log file, CI), a plain
    line only when the counts change, at most one every 2 s, so an idle `up` logs nothing."""

    def __init__(self) -> None:
        self._tick = 0
        self._last = 0.0
        self._printed = ""
        self._tty = sys.stderr.isatty()

    def __call__(self, line: str) -> None:
        self._tick += 1
        if self._tty:
            print(f"\r{SPINNER[self._tick % len(SPINNER)]} {line}\033[K", end="", file=sys.stderr)
        elif line != self._printed and time.monotonic() - self._last > 2:
            self._last = time.monotonic()
            self._printed = line
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
    try:
        running = RunningSandbox.attach()
    except NotRunningError as error:
        if STATE_PATH.exists():  # attach removes a dead sandbox's state, not a hung one's
            raise AlreadyRunningError(f"{error}; not starting a second one") from None
    else:
        raise AlreadyRunningError(
            f"a sandbox already runs in this folder ({running.describe()}): use it, or stop "
            "it (Ctrl-C in its terminal) before starting another"
        )
    print("Starting the sandbox...", file=sys.stderr)
    with _sigterm_as_interrupt(), _started(args) as sb:
        control = ControlServer(sb)
        control.start()
        console = console_commands.serve_console(sb, args)
        try:
            write_state(control)
            _banner(sb, console.url)
            progress = _Progress()
            while True:
                progress(sb.progress_line())
                time.sleep(0.2)
        except KeyboardInterrupt:
            print("\nStopping the sandbox...", file=sys.stderr)
        finally:
            console.stop()
            remove_state(control.token)
            control.stop()
    return 0


def _banner(sb: Sandbox, console_url: str) -> None:
    print(f"Sandbox running at {sb.endpoint_url}")
    print(f"  console        {console_url}")
    print(f"  bucket         {sb.bucket_name}\n  table          {sb.table_name}")
    print(f"  failure queue  {sb.failure_queue_url}\n  function log   {FUNCTION_LOG}")
    print(f"  faults         {sb.faults.describe()}  (change: python -m sandbox faults --help)")
    print("Point the AWS CLI and boto3 at it:")
    for name, value in sb.environment().items():
        print(f"  export {name}={value}")
    print(f"Try: aws s3 cp README.md s3://{sb.bucket_name}/ && python -m sandbox ledger")
    print("Ctrl-C stops it.", flush=True)


def _demo(args: argparse.Namespace) -> int:
    print("Starting the sandbox (moto on 127.0.0.1, deployed from cdk.out)...", file=sys.stderr)
    with _sigterm_as_interrupt(), _started(args) as sb:
        if sb.faults.active:
            print(f"Injecting faults: {sb.faults.describe()}", file=sys.stderr)
        print(
            f"Uploading {len(DEMO_KEYS)} files to s3://{sb.bucket_name}/, then a second "
            f"version of {DEMO_KEYS[0]!r} ({len(DEMO_KEYS) + 1} uploads)",
            file=sys.stderr,
        )
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


# `ledger`, `redrive` and `faults` ask the sandbox that `up` runs (sandbox.control).
def _ledger(args: argparse.Namespace) -> int:
    items = RunningSandbox.attach().ledger()
    print(format_table(items))
    print(f"\n{len(items)} ledger items")
    return 0


def _redrive(args: argparse.Namespace) -> int:
    outcome = RunningSandbox.attach().redrive(bypass_faults=args.bypass_faults)
    result = outcome.result
    print(f"Redrove {result.redriven} events; {outcome.remaining} still in the failure queue")
    for message_id, why in sorted(result.not_failure_records.items()):
        print(
            f"sandbox: message {message_id} in the failure queue is not a failure record "
            f"({why}); left in the queue",
            file=sys.stderr,
        )
    if not result.failed_again:
        return 0
    print(
        f"sandbox: {result.failed_again} events failed again: {result.last_error}", file=sys.stderr
    )
    if outcome.faults.active and not outcome.bypassed_faults:
        print(
            f"sandbox: the sandbox still injects faults ({outcome.faults.describe()}): switch "
            "them off with `python -m sandbox faults --none`, or redrive past them with "
            "`python -m sandbox redrive --bypass-faults`",
            file=sys.stderr,
        )
    return 1


def _faults_command(args: argparse.Namespace) -> int:
    running = RunningSandbox.attach()
    current = Faults() if args.none else running.faults()
    wanted = _faults(args, current)
    if args.none or wanted != running.faults():
        wanted = running.set_faults(wanted)
    print(f"Faults: {wanted.describe()}")
    return 0
