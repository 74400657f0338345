"""The local Lambda runtime: S3 events from the transport queue -> the real handler.

It models an asynchronous invocation as AWS runs it: Lambda's internal queue takes
the event (so the transport message is deleted at once), an execution environment
invokes the handler, a failed invocation is retried up to MaximumRetryAttempts with a
backoff that doubles (seconds here, minutes in AWS), an event older than
MaximumEventAgeInSeconds is dropped, and either way the event goes to the on-failure
destination as the record AWS sends there. Duplicates and out-of-order arrival are
injected on the way in (see :class:`sandbox.faults.Faults`).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from config import constants as c
from sandbox.faults import Faults
from sandbox.template import FunctionSpec

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
S3_TEST_EVENT = "s3:TestEvent"
SQS_BATCH = 10
Answer = dict[str, Any]


@dataclass(frozen=True)
class FunctionIdentity:
    """How the deployed function is named: what its context and failure records carry."""

    name: str
    version: str
    invoked_arn: str
    log_group: str


class FunctionWorker:
    """One execution environment: a subprocess that imported the handler from the asset."""

    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], log: IO[bytes] | None
    ) -> None:
        self._spec = spec
        self._environment = environment
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.module_file: str | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(  # noqa: S603 - our own script and interpreter
            [
                sys.executable,
                "-I",
                str(WORKER_SCRIPT),
                str(self._spec.asset_dir),
                self._spec.handler,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            env=self._environment,
        )
        assert process.stdout is not None  # noqa: S101 - set by stdout=PIPE
        ready = json.loads(process.stdout.readline() or b"{}")
        self.module_file = ready.get("module_file")
        self._process = process
        return process

    def invoke(self, event: Any, context: dict[str, Any], timeout: float) -> Answer:
        """Run the handler once; a timeout or crash ends this environment, as in Lambda."""
        process = self._process if self._process and self._process.poll() is None else None
        process = process or self._start()
        assert process.stdin is not None  # noqa: S101 - set by stdin=PIPE
        assert process.stdout is not None  # noqa: S101 - set by stdout=PIPE
        try:
            process.stdin.write(json.dumps({"event": event, "context": context}).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            return self._died(context)
        readable, _, _ = select.select([process.stdout], [], [], timeout)
        if not readable:
            self.close()
            return {
                "ok": False,
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"{context['aws_request_id']} Task timed out after "
                f"{timeout:.2f} seconds",
            }
        line = process.stdout.readline()
        if not line:
            return self._died(context)
        answer: Answer = json.loads(line)
        return answer

    def _died(self, context: dict[str, Any]) -> Answer:
        code = self._process.poll() if self._process else None
        self.close()
        return {
            "ok": False,
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {context['aws_request_id']} Error: Runtime exited "
            f"with status {code}",
        }

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def lambda_context(spec: FunctionSpec, identity: FunctionIdentity) -> dict[str, Any]:
    """The fields of a fresh invocation's context (a new request id, the template's timeout)."""
    request_id = str(uuid.uuid4())
    return {
        "function_name": identity.name,
        "function_version": identity.version,
        "invoked_function_arn": identity.invoked_arn,
        "memory_limit_in_mb": spec.memory_mb,
        "aws_request_id": request_id,
        "log_group_name": identity.log_group,
        "log_stream_name": f"{datetime.now(UTC):%Y/%m/%d}/[{identity.version}]{request_id[:8]}",
        "deadline_ms": int(time.time() * 1000) + spec.timeout_seconds * 1000,
    }


def failure_record(
    event: Any,
    identity: FunctionIdentity,
    *,
    condition: str,
    attempts: int,
    answer: Answer | None,
) -> dict[str, Any]:
    """The message Lambda sends to an on-failure destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": identity.invoked_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
    }
    if answer is not None:
        record["responseContext"] = {
            "statusCode": 200,
            "executedVersion": identity.version,
            "functionError": "Unhandled",
        }
        record["responsePayload"] = {
            k: answer[k] for k in ("errorMessage", "errorType", "stackTrace") if k in answer
        }
    return record


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation as the Lambda service saw it: what its metrics are made of."""

    started_at: float  # epoch seconds, on the runtime's clock
    duration_ms: float
    ok: bool
    executed_version: str
    qualifier: str | None  # the alias or version S3 invoked; None for $LATEST
    emf_lines: tuple[str, ...] = ()  # EMF lines the function printed (CloudWatch Logs input)


# Called by the runtime after every invocation (e.g. to publish its metrics).
InvocationObserver = Callable[[InvocationRecord], None]


def invocation_record(
    answer: Answer, *, started_at: float, identity: FunctionIdentity, timeout_seconds: float
) -> InvocationRecord:
    """The record of one invocation from the worker's answer.

    A timed-out invocation lasted the whole timeout (Lambda's Duration says so too); an
    environment that died mid-way has no duration of its own, so it counts as zero.
    """
    duration = answer.get("durationMs")
    if answer.get("errorType") == "Sandbox.Timedout":
        duration = timeout_seconds * 1000
    return InvocationRecord(
        started_at=started_at,
        duration_ms=float(duration or 0.0),
        ok=bool(answer.get("ok")),
        executed_version=identity.version,
        qualifier=arn_qualifier(identity.invoked_arn),
        emf_lines=tuple(answer.get("emf") or ()),
    )


def arn_qualifier(function_arn: str) -> str | None:
    """The alias or version of a qualified function ARN (arn:aws:lambda:r:a:function:f:q)."""
    parts = function_arn.split(":")
    return parts[7] if len(parts) == 8 and parts[7] != "$LATEST" else None


@dataclass(order=True)
class _Invocation:
    due: float
    seq: int
    event: Any = field(compare=False)
    received_at: float = field(compare=False)  # wall clock, for MaximumEventAgeInSeconds
    attempts: int = field(default=0, compare=False)
    last_answer: Answer | None = field(default=None, compare=False)


@dataclass
class RuntimeStats:
    """What the runtime did; tests and the CLI's progress read it."""

    events_received: int = 0
    duplicates_injected: int = 0
    invocations: int = 0
    errors: int = 0
    retries: int = 0
    sent_to_failure_queue: int = 0
    recorded: int = 0
    skipped: int = 0


class LambdaRuntime:
    """Polls the transport queue and invokes the handler with Lambda's async semantics."""

    def __init__(
        self,
        *,
        spec: FunctionSpec,
        identity: FunctionIdentity,
        environment: dict[str, str],
        sqs: Any,
        transport_queue_url: str,
        failure_queue_url: str | None,
        faults: Faults,
        retry_delay_seconds: float,
        concurrency: int = c.SANDBOX_CONCURRENCY,
        log: IO[bytes] | None = None,
        on_invocation: InvocationObserver | None = None,
    ) -> None:
        self.spec = spec
        self._on_invocation = on_invocation
        self.identity = identity
        self.stats = RuntimeStats()
        self._environment = environment
        self._sqs = sqs
        self._transport = transport_queue_url
        self._failure_queue = failure_queue_url
        self._retry_delay = retry_delay_seconds
        self._log = log
        self._faults = faults
        self._random = random.Random(faults.seed)
        self._queue: list[_Invocation] = []
        self._seq = itertools.count()
        self._executing = 0
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, name="sandbox-poller", daemon=True)]
        self._threads += [
            threading.Thread(target=self._execute, name=f"sandbox-lambda-{n}", daemon=True)
            for n in range(concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def set_faults(self, faults: Faults) -> None:
        with self._condition:
            self._faults = faults
            self._random = random.Random(faults.seed)

    def busy(self) -> bool:
        """True while an event waits in Lambda's queue (or for a retry) or is running."""
        with self._condition:
            return bool(self._queue) or self._executing > 0

    def new_worker(self) -> FunctionWorker:
        return FunctionWorker(self.spec, self._environment, self._log)

    # The poller: transport queue -> Lambda's internal queue, with delivery faults.
    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception as error:  # keep polling; say what went wrong
                print(f"sandbox: polling the transport queue failed: {error!r}", file=sys.stderr)
                self._stop.wait(1.0)

    def _poll_once(self) -> None:
        messages = self._sqs.receive_message(
            QueueUrl=self._transport, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            self._stop.wait(c.SANDBOX_POLL_INTERVAL_SECONDS)
            return
        self._accept([json.loads(m["Body"]) for m in messages])
        # Deleted only once Lambda's queue holds the events: nothing is ever in neither.
        self._sqs.delete_message_batch(
            QueueUrl=self._transport,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )

    def _accept(self, events: list[Any]) -> None:
        # S3 sends s3:TestEvent to queues and topics only, never to a function.
        events = [e for e in events if e.get("Event") != S3_TEST_EVENT]
        with self._condition:
            faults, rng = self._faults, self._random
            deliveries = []
            for event in events:
                deliveries.append(event)
                if rng.random() < faults.duplicate_rate:
                    deliveries.append(event)
                    self.stats.duplicates_injected += 1
            if faults.shuffle:
                rng.shuffle(deliveries)
            now, wall = time.monotonic(), time.time()
            for event in deliveries:
                delay = rng.uniform(0, c.SANDBOX_SHUFFLE_WINDOW_SECONDS) if faults.shuffle else 0
                heapq.heappush(self._queue, _Invocation(now + delay, next(self._seq), event, wall))
            self.stats.events_received += len(events)
            self._condition.notify_all()

    # Execution environments: one worker process each, as Lambda keeps them warm.
    def _execute(self) -> None:
        worker = self.new_worker()
        try:
            while (invocation := self._next_due()) is not None:
                try:
                    self._run(worker, invocation)
                except Exception as error:  # the environment lives on, as in Lambda
                    print(f"sandbox: invocation machinery failed: {error!r}", file=sys.stderr)
                finally:
                    with self._condition:
                        self._executing -= 1
                        self._condition.notify_all()
        finally:
            worker.close()

    def _next_due(self) -> _Invocation | None:
        with self._condition:
            while not self._stop.is_set():
                if self._queue and self._queue[0].due <= time.monotonic():
                    self._executing += 1
                    return heapq.heappop(self._queue)
                wait = self._queue[0].due - time.monotonic() if self._queue else None
                self._condition.wait(timeout=wait)
            return None

    def _run(self, worker: FunctionWorker, invocation: _Invocation) -> None:
        if time.time() - invocation.received_at > self.spec.max_event_age_seconds:
            self._to_failure_queue(invocation, "EventAgeExceeded")
            return
        invocation.attempts += 1
        context = lambda_context(self.spec, self.identity)
        started_at = time.time()
        answer = worker.invoke(invocation.event, context, float(self.spec.timeout_seconds))
        self._observe(answer, started_at)
        with self._condition:
            self.stats.invocations += 1
            if answer.get("ok"):
                result = answer.get("result") or {}
                self.stats.recorded += int(result.get("recorded", 0))
                self.stats.skipped += int(result.get("skipped", 0))
                return
            self.stats.errors += 1
            invocation.last_answer = answer
            if invocation.attempts <= self.spec.max_retry_attempts:
                self.stats.retries += 1
                backoff = self._retry_delay * 2 ** (invocation.attempts - 1)
                invocation.due = time.monotonic() + backoff
                heapq.heappush(self._queue, invocation)
                return
        self._to_failure_queue(invocation, "RetriesExhausted")

    def _observe(self, answer: Answer, started_at: float) -> None:
        """Tell the observer; its failure (say, metrics) must never change Lambda's semantics."""
        if self._on_invocation is None:
            return
        record = invocation_record(
            answer,
            started_at=started_at,
            identity=self.identity,
            timeout_seconds=self.spec.timeout_seconds,
        )
        try:
            self._on_invocation(record)
        except Exception as error:  # the invocation's outcome stands; say what failed
            print(f"sandbox: recording the invocation failed: {error!r}", file=sys.stderr)

    def _to_failure_queue(self, invocation: _Invocation, condition: str) -> None:
        record = failure_record(
            invocation.event,
            self.identity,
            condition=condition,
            attempts=invocation.attempts,
            answer=invocation.last_answer,
        )
        if self._failure_queue is None:
            # No destination configured: Lambda discards the event, and so do we (loudly).
            print(
                f"sandbox: event discarded ({condition}), no on-failure destination",
                file=sys.stderr,
            )
            return
        self._sqs.send_message(QueueUrl=self._failure_queue, MessageBody=json.dumps(record))
        with self._condition:
            self.stats.sent_to_failure_queue += 1


def redrive_failures(sqs: Any, queue_url: str, invoke: Callable[[Any], Answer]) -> int:
    """Replay each failure record's event through `invoke`; delete those that succeed.

    Records that fail again stay in the queue (made visible again at the end), so
    nothing is lost. Returns how many were recorded and deleted.
    """
    redriven, failed = 0, []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=SQS_BATCH, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            payload = json.loads(message["Body"]).get("requestPayload")
            if payload is not None and invoke(payload).get("ok"):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                redriven += 1
            else:
                failed.append(message["ReceiptHandle"])
    for handle in failed:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return redriven
