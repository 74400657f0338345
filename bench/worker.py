"""One warm execution environment, in its own process: ``python -m bench.worker MODULE``.

The parent (:mod:`bench.warm`) starts one worker per handler and sends them batches of
events in turn over stdin, so a busy moment of the machine hits both alike. The worker
behaves like Lambda's runtime as far as the handler can tell: ``LAMBDA_TASK_ROOT`` is
set (so the X-Ray SDK takes its Lambda path), every invocation gets a sampled
``_X_AMZN_TRACE_ID`` (the traced, dearer case) and trace data goes to a local UDP socket
standing in for the X-Ray daemon. What the handler prints (logs, EMF metrics) is counted,
not kept: that volume is what CloudWatch Logs bills.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import socket
import sys
import time
from typing import Any, TextIO

from bench.events import s3_event
from local_aws import FakeLambdaContext


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


def _invoke(handler: Any, event: dict[str, Any], context: FakeLambdaContext) -> tuple[int, int]:
    """(wall ns, CPU ns) of one invocation. CPU is what the function's own work costs,
    whatever the endpoint's speed: Lambda bills wall time, but the endpoint's share of
    it is DynamoDB's (or the emulator's) work, not ours."""
    os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
    started, cpu_started = time.perf_counter_ns(), time.process_time_ns()
    handler(event, context)
    return time.perf_counter_ns() - started, time.process_time_ns() - cpu_started


def serve(module: str, requests: TextIO, replies: TextIO, sink: CountingSink) -> None:
    """Import the handler (the cold start, not timed), then run each requested batch.

    A request is one JSON line ``{"records": R, "events": E}``; the reply is one JSON line
    with each event's duration and CPU time in nanoseconds and the bytes the batch printed
    per event.
    """
    handler = importlib.import_module(module).lambda_handler
    context = FakeLambdaContext()
    replies.write(json.dumps({"ready": module}) + "\n")
    replies.flush()
    for line in requests:
        request = json.loads(line)
        records, events = request["records"], request["events"]
        logged_before = sink.bytes_written
        timings = [
            _invoke(handler, s3_event(f"r{records}", records), context) for _ in range(events)
        ]
        reply = {
            "event_ns": [wall for wall, _ in timings],
            "event_cpu_ns": [cpu for _, cpu in timings],
            "log_bytes_per_event": (sink.bytes_written - logged_before) / events,
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def main() -> None:
    daemon = _xray_daemon()
    sink = CountingSink()
    # What the handler prints is counted, not kept; replies use the real stdout.
    replies, sys.stdout = sys.stdout, sink
    try:
        serve(sys.argv[1], sys.stdin, replies, sink)
    finally:
        sys.stdout = replies
        daemon.close()


if __name__ == "__main__":
    main()
