"""One warm execution environment, in its own process: ``python -m bench.worker MODULE``.

The parent (:mod:`bench.warm`) starts one worker per handler (two for the real one:
traced and untraced) and sends them batches of events in turn over stdin, so a busy
moment of the machine hits them alike. The worker
behaves like Lambda's runtime as far as the handler can tell: ``LAMBDA_TASK_ROOT`` is
set (so the X-Ray SDK takes its Lambda path), every invocation gets an
``_X_AMZN_TRACE_ID`` header, as Lambda sets it, and trace data goes to a local UDP socket
standing in for the X-Ray daemon. The header says ``Sampled=1`` (the traced, dearer case)
unless the batch asks for ``"traced": false``: then ``Sampled=0``, the case of most
invocations at volume (Lambda's default sampling rule traces one request a second and 5 %
of the rest), for which the handler does no X-Ray work. What the handler prints (logs, EMF
metrics) is counted, not kept: that volume is what CloudWatch Logs bills.
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


def trace_header(sampled: bool) -> str:
    """An ``_X_AMZN_TRACE_ID`` value as Lambda sets it: a new trace, sampled or not.

    Format: AWS X-Ray Developer Guide, "Tracing header" (Root, Parent, Sampled).
    """
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled={int(sampled)}"


def _xray_daemon() -> socket.socket:
    # Bound but never read: the kernel takes the datagrams, as the daemon would.
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    host, port = daemon.getsockname()
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
    return daemon


def _invoke(
    handler: Any, event: dict[str, Any], context: FakeLambdaContext, *, traced: bool
) -> tuple[int, int]:
    """(wall ns, CPU ns) of one invocation, sampled by X-Ray or not. CPU is what the
    function's own work costs, whatever the endpoint's speed: Lambda bills wall time, but
    the endpoint's share of it is DynamoDB's (or the emulator's) work, not ours."""
    os.environ["_X_AMZN_TRACE_ID"] = trace_header(sampled=traced)
    started, cpu_started = time.perf_counter_ns(), time.process_time_ns()
    handler(event, context)
    return time.perf_counter_ns() - started, time.process_time_ns() - cpu_started


def serve(module: str, requests: TextIO, replies: TextIO, sink: CountingSink) -> None:
    """Import the handler (the cold start, not timed), then run each requested batch.

    A request is one JSON line ``{"records": R, "events": E, "traced": T}`` (``traced``
    defaults to true: each invocation's trace header says ``Sampled=1``, else
    ``Sampled=0``); the reply is one JSON line with each event's duration and CPU time in
    nanoseconds and the bytes the batch printed per event.
    """
    handler = importlib.import_module(module).lambda_handler
    context = FakeLambdaContext()
    replies.write(json.dumps({"ready": module}) + "\n")
    replies.flush()
    for line in requests:
        request = json.loads(line)
        records, events = request["records"], request["events"]
        traced = bool(request.get("traced", True))
        logged_before = sink.bytes_written
        timings = [
            _invoke(handler, s3_event(f"r{records}", records), context, traced=traced)
            for _ in range(events)
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
