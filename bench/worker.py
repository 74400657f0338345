"""One warm execution environment, in its own process: ``python -m bench.worker SPEC``.

The parent (:mod:`bench.warm`) starts one worker per handler and round. The worker
behaves like Lambda's runtime as far as the handler can tell: ``LAMBDA_TASK_ROOT`` is
set (so the X-Ray SDK takes its Lambda path), every invocation gets a sampled
``_X_AMZN_TRACE_ID`` (the traced, dearer case) and trace data goes to a local UDP socket
standing in for the X-Ray daemon. What the handler prints (logs, EMF metrics) is counted,
not kept: that volume is what CloudWatch Logs bills. Results go to the real stdout as JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.events import s3_event


@dataclass(frozen=True)
class FakeLambdaContext:
    """What Powertools reads from Lambda's context object."""

    function_name: str = "upload-ledger-bench"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:111111111111:function:bench:live"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


class CountingSink:
    """A stdout that counts the bytes written to it, like a log pipe nobody waits on."""

    def __init__(self) -> None:
        self.bytes_written = 0

    def write(self, text: str) -> int:
        self.bytes_written += len(text.encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        """Nothing buffered."""

    def isatty(self) -> bool:
        return False


def _trace_header() -> str:
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=1"


def _xray_daemon() -> socket.socket:
    # Bound but never read: the kernel takes the datagrams, as the daemon would.
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    host, port = daemon.getsockname()
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
    return daemon


def _invoke(handler: Any, event: dict[str, Any], context: FakeLambdaContext) -> int:
    os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
    started = time.perf_counter_ns()
    handler(event, context)
    return time.perf_counter_ns() - started


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the handler (cold start, not timed), warm it up, then time each event."""
    daemon = _xray_daemon()
    sink = CountingSink()
    real_stdout, sys.stdout = sys.stdout, sink
    try:
        handler = importlib.import_module(spec["module"]).lambda_handler
        context = FakeLambdaContext()
        results: dict[str, Any] = {}
        for records in spec["records_per_event"]:
            for _ in range(spec["warmup_events"]):
                _invoke(handler, s3_event("warmup", records), context)
            events = max(1, spec["total_records"] // records)
            logged_before = sink.bytes_written
            durations = [
                _invoke(handler, s3_event(f"r{records}", records), context) for _ in range(events)
            ]
            results[str(records)] = {
                "event_ns": durations,
                "log_bytes_per_event": (sink.bytes_written - logged_before) / events,
            }
    finally:
        sys.stdout = real_stdout
        daemon.close()
    return results


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
