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

import contextlib
import heapq
import itertools
import json
import math
import random
import select
import signal
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

from sandbox import settings
from sandbox.faults import Faults
from sandbox.template import FunctionSpec

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
S3_TEST_EVENT = "s3:TestEvent"
SQS_BATCH = 10
# Lambda gives the init phase 10 s (or the function timeout, if longer) before it gives up.
INIT_TIMEOUT_SECONDS = 10.0
Answer = dict[str, Any]


@dataclass(frozen=True)
class FunctionIdentity:
    """How the deployed function is named: what its context and failure records carry."""

    name: str
    version: str
    invoked_arn: str
    log_group: str


class FunctionWorker:
    """One execution environment: a subprocess that imported the handler from the asset.

    :meth:`invoke` never raises for what happens to the environment: a crash, a kill, a
    timeout, a broken pipe or an unreadable answer all come back as the error answer
    Lambda reports (``Runtime.ExitError``, ``Sandbox.Timedout``), and the environment is
    replaced on the next invocation, as Lambda replaces a failed one.
    """

    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], log: IO[bytes] | None
    ) -> None:
        self._spec = spec
        self._environment = environment
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self.module_file: str | None = None
        # time.monotonic() when the invocation running now was handed to the handler (past
        # the environment's init); None while idle or initialising.
        self.invoked_at: float | None = None

    @property
    def pid(self) -> int | None:
        """The environment's process id while it runs (tests kill it to model a crash)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def is_asleep(self) -> bool | None:
        """True while the environment's process sleeps inside an invocation (Linux state
        ``S``: a ``sleep``, a blocked call), False while it runs or waits for a CPU (``R``)
        or has answered already (it then sleeps waiting for the next event, until the
        runtime, itself slow on a loaded machine, reads the answer), None where
        ``/proc/<pid>/stat`` can't tell (another OS, or the process just ended)."""
        process = self._process
        if process is None or process.poll() is not None or process.stdout is None:
            return None
        try:
            with open(f"/proc/{process.pid}/stat", "rb") as stat:
                # "pid (comm) state ...": comm may hold spaces and parentheses.
                state = stat.read().rsplit(b")", 1)[1].split()[0]
            answered, _, _ = select.select([process.stdout], [], [], 0)
        except (OSError, IndexError, ValueError):
            return None
        return state == b"S" and not answered

    def _start(self, timeout: float) -> subprocess.Popen[bytes] | None:
        """A fresh environment past its init phase, or None if it died or hung in init."""
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
        self._process = process
        assert process.stdout is not None  # noqa: S101 - set by stdout=PIPE
        ready_line = self._read_line(process, timeout)
        if not ready_line:
            return None
        self.module_file = json.loads(ready_line).get("module_file")
        return process

    @staticmethod
    def _read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes | None:
        """The next line the environment answers, b"" if it exited, None after `timeout`."""
        assert process.stdout is not None  # noqa: S101 - set by stdout=PIPE
        readable, _, _ = select.select([process.stdout], [], [], timeout)
        return process.stdout.readline() if readable else None

    def invoke(self, event: Any, context: dict[str, Any], timeout: float) -> Answer:
        """Run the handler once; a timeout or crash ends this environment, as in Lambda."""
        try:
            return self._invoke(event, context, timeout)
        except (OSError, ValueError):  # a broken pipe, a closed file, a garbled answer
            return self._died(context)

    def _invoke(self, event: Any, context: dict[str, Any], timeout: float) -> Answer:
        process = self._process if self._process and self._process.poll() is None else None
        if process is None:
            self.close()
            process = self._start(max(timeout, INIT_TIMEOUT_SECONDS))
            if process is None:
                return self._died(context)
        assert process.stdin is not None  # noqa: S101 - set by stdin=PIPE
        self.invoked_at = time.monotonic()
        try:
            process.stdin.write(json.dumps({"event": event, "context": context}).encode() + b"\n")
            process.stdin.flush()
            line = self._read_line(process, timeout)
        finally:
            self.invoked_at = None
        if line is None:
            self.close(kill=True)  # Lambda stops the runtime at the timeout
            return {
                "ok": False,
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {context['aws_request_id']} Error: Task timed out "
                f"after {timeout:.2f} seconds",
            }
        if not line:
            return self._died(context)
        answer: Answer = json.loads(line)
        return answer

    def _died(self, context: dict[str, Any]) -> Answer:
        """The answer Lambda gives when the runtime process exits during an invocation."""
        process = self._process
        self.close()  # reaps it: an exiting process's own status, not our kill's
        code = process.returncode if process is not None else None
        if code is not None and code < 0:
            reason = f"signal: {_signal_name(-code)}"
        else:
            reason = f"exit status {code}"
        return {
            "ok": False,
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {context['aws_request_id']} Error: Runtime exited "
            f"with error: {reason}",
        }

    def close(self, *, kill: bool = False) -> None:
        """End the environment: EOF on its stdin (or SIGKILL), then reap it. Never raises."""
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            process.kill()
        with contextlib.suppress(OSError):  # a dead process's pipe: nothing left to flush
            if process.stdin:
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def _signal_name(number: int) -> str:
    """How Lambda names a signal that ended the runtime ("killed", "segmentation fault")."""
    try:
        return (signal.strsignal(number) or str(number)).lower()
    except ValueError:
        return str(number)


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
    # Invocations of the function running when this one began, itself included.
    concurrent_executions: int = 1


# Called by the runtime after every invocation (e.g. to publish its metrics).
InvocationObserver = Callable[[InvocationRecord], None]


def invocation_record(
    answer: Answer,
    *,
    started_at: float,
    identity: FunctionIdentity,
    timeout_seconds: float,
    concurrent_executions: int = 1,
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
        concurrent_executions=concurrent_executions,
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
    # Set once the event is bound for the on-failure destination (why, as Lambda says it).
    condition: str | None = field(default=None, compare=False)


@dataclass
class RuntimeStats:
    """What the runtime did; tests and the CLI's progress read it.

    Every delivery (``events_received + duplicates_injected``) ends exactly once as
    ``succeeded``, ``sent_to_failure_queue`` or ``discarded`` (no on-failure destination,
    as Lambda discards it); until then it is in Lambda's queue or running (:meth:`busy`).
    ``redriven`` counts failure-queue events a redrive recorded since.
    """

    events_received: int = 0
    duplicates_injected: int = 0
    invocations: int = 0
    errors: int = 0
    retries: int = 0
    succeeded: int = 0
    sent_to_failure_queue: int = 0
    discarded: int = 0
    recorded: int = 0
    skipped: int = 0
    redriven: int = 0


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
        concurrency: int = settings.SANDBOX_CONCURRENCY,
        max_concurrency: int | None = None,
        scale_out_after_seconds: float = settings.SANDBOX_SCALE_OUT_AFTER_SECONDS,
        log: IO[bytes] | None = None,
        on_invocation: InvocationObserver | None = None,
    ) -> None:
        if not (math.isfinite(retry_delay_seconds) and retry_delay_seconds >= 0):
            raise ValueError(
                f"retry_delay_seconds must be a finite number >= 0, not {retry_delay_seconds!r}"
            )
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
        self._invoking = 0  # invocations in an environment now (redrives included)
        self._workers: list[FunctionWorker] = []
        lock = threading.RLock()
        self._condition = threading.Condition(lock)
        # Environments not yet taking events wait here, looking now and then for waiting
        # invocations: woken by every change of Lambda's queue they would only cost CPU.
        self._spare = threading.Condition(lock)
        self._stop = threading.Event()
        # Environments 0..concurrency-1 take events from the start; the others, up to
        # max_concurrency, only once waiting ones leave too few working (see _scale_out).
        self._concurrency = concurrency
        self._active = concurrency
        self._scale_out_after = scale_out_after_seconds
        self._threads = [threading.Thread(target=self._poll, name="sandbox-poller", daemon=True)]
        self._threads += [
            threading.Thread(target=self._execute, args=(n,), name=f"sandbox-lambda-{n}")
            for n in range(max(concurrency, max_concurrency or concurrency))
        ]
        for thread in self._threads:
            thread.daemon = True

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._condition:
            self._wake_all()
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

    def new_worker(self, environment: dict[str, str] | None = None) -> FunctionWorker:
        """An execution environment of this function (`environment` overrides its variables)."""
        return FunctionWorker(self.spec, environment or self._environment, self._log)

    def redrive(self, endpoint_url: str | None = None) -> RedriveResult:
        """Replay the failure queue through a fresh environment of this function.

        `endpoint_url` replaces the function's AWS endpoint for the redrive (the emulator
        itself, bypassing the fault proxy). Counts what it recorded in ``stats.redriven``;
        each replay is published (observer, so metrics) as any invocation of the alias.
        """
        if self._failure_queue is None:
            return RedriveResult()
        environment = dict(self._environment)
        if endpoint_url is not None:
            environment["AWS_ENDPOINT_URL"] = endpoint_url
        worker = self.new_worker(environment)
        try:
            # Each replay is an invocation of the alias like any other (the runbook's
            # `aws lambda invoke`): its metrics are published as for any invocation.
            result = redrive_failures(
                self._sqs, self._failure_queue, lambda event: self._invoke(worker, event)
            )
        finally:
            worker.close()
        with self._condition:  # `up`'s counters include what the redrive did
            self.stats.redriven += result.redriven
            self.stats.recorded += result.recorded
            self.stats.skipped += result.skipped
        return result

    def environment_pids(self) -> list[int]:
        """The process ids of the execution environments running now."""
        with self._condition:
            workers = list(self._workers)
        return [pid for pid in (w.pid for w in workers) if pid is not None]

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
            self._stop.wait(settings.SANDBOX_POLL_INTERVAL_SECONDS)
            return
        self._accept([event for m in messages if (event := _s3_event(m)) is not None])
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
                delay = (
                    rng.uniform(0, settings.SANDBOX_SHUFFLE_WINDOW_SECONDS) if faults.shuffle else 0
                )
                heapq.heappush(self._queue, _Invocation(now + delay, next(self._seq), event, wall))
            self.stats.events_received += len(events)
            self._wake_all()

    # Execution environments: one worker process each, as Lambda keeps them warm.
    def _execute(self, index: int) -> None:
        worker = self.new_worker()
        with self._condition:
            self._workers.append(worker)
        try:
            while (invocation := self._next_due(index)) is not None:
                try:
                    self._run(worker, invocation)
                except Exception as error:  # our own machinery failed: the event stays ours
                    worker.close(kill=True)
                    self._machinery_failed(invocation, error)
                finally:
                    with self._condition:
                        self._executing -= 1
                        self._condition.notify_all()
        finally:
            worker.close()

    def _next_due(self, index: int) -> _Invocation | None:
        """The next due event for environment `index`; None once the runtime stops."""
        with self._condition:
            while not self._stop.is_set():
                now = time.monotonic()
                due = bool(self._queue) and self._queue[0].due <= now
                # Only the next spare in line looks for waiting invocations (a /proc read per
                # environment): _scale_out can promote no other, and wakes the spares when
                # it promotes this one, so the next in line takes over the looking.
                next_in_line = index == self._active
                if due and next_in_line:
                    self._scale_out(now)
                if due and index < self._active:
                    self._executing += 1
                    return heapq.heappop(self._queue)
                if index >= self._active:
                    # Looking again soon only while events are queued: otherwise spares sleep
                    # until an event arrives (every enqueue notifies them).
                    looking = next_in_line and self._queue
                    self._spare.wait(timeout=self._scale_out_after / 2 if looking else None)
                    continue
                self._condition.wait(timeout=self._queue[0].due - now if self._queue else None)
            return None

    def _scale_out(self, now: float) -> None:
        """Let one more environment take events, while events are due and invocations that
        wait (the SDK's backoff after a throttle, a slow call: no CPU of ours) leave fewer
        than `concurrency` environments working. Lambda scales out while events wait; the
        sandbox keeps to a few environments so that a burst stays within the machine's CPU
        (each new one pays a cold start) and memory (call with the condition held)."""
        waiting = sum(1 for worker in self._workers if self._is_waiting(worker, now))
        if self._executing - waiting < self._concurrency and self._executing >= self._active:
            self._active += 1
            self._spare.notify_all()  # the environment numbered as the new one takes events

    def _is_waiting(self, worker: FunctionWorker, now: float) -> bool:
        """An invocation that has run a while in an environment that sleeps (no CPU of
        ours); where the state can't be read, one that has run for a long while."""
        since = worker.invoked_at
        if since is None or now - since < self._scale_out_after:
            return False
        asleep = worker.is_asleep()
        if asleep is None:
            return now - since >= max(
                self._scale_out_after, settings.SANDBOX_SCALE_OUT_BLIND_AFTER_SECONDS
            )
        return asleep

    def _run(self, worker: FunctionWorker, invocation: _Invocation) -> None:
        if invocation.condition is None and (
            time.time() - invocation.received_at > self.spec.max_event_age_seconds
        ):
            invocation.condition = "EventAgeExceeded"
        if invocation.condition is None:
            invocation.attempts += 1
            answer = self._invoke(worker, invocation.event)
            if self._settle(invocation, answer):
                return
        self._to_failure_queue(invocation)

    def _invoke(self, worker: FunctionWorker, event: Any) -> Answer:
        """One invocation of the function in `worker`, told to the observer (metrics)."""
        context = lambda_context(self.spec, self.identity)
        with self._condition:
            self._invoking += 1
            concurrent = self._invoking
        started_at = time.time()
        try:
            answer = worker.invoke(event, context, float(self.spec.timeout_seconds))
        finally:
            with self._condition:
                self._invoking -= 1
        self._observe(answer, started_at, concurrent)
        return answer

    def _settle(self, invocation: _Invocation, answer: Answer) -> bool:
        """Count an attempt's answer; False when the event is bound for the failure queue."""
        with self._condition:
            self.stats.invocations += 1
            if answer.get("ok"):
                result = answer.get("result") or {}
                self.stats.succeeded += 1
                self.stats.recorded += int(result.get("recorded", 0))
                self.stats.skipped += int(result.get("skipped", 0))
                return True
            self.stats.errors += 1
            invocation.last_answer = answer
            if invocation.attempts <= self.spec.max_retry_attempts:
                self.stats.retries += 1
                self._requeue(invocation, self._retry_delay * 2 ** (invocation.attempts - 1))
                return True
            invocation.condition = "RetriesExhausted"
            return False

    def _observe(self, answer: Answer, started_at: float, concurrent: int) -> None:
        """Tell the observer; its failure (say, metrics) must never change Lambda's semantics."""
        if self._on_invocation is None:
            return
        record = invocation_record(
            answer,
            started_at=started_at,
            identity=self.identity,
            timeout_seconds=self.spec.timeout_seconds,
            concurrent_executions=concurrent,
        )
        try:
            self._on_invocation(record)
        except Exception as error:  # the invocation's outcome stands; say what failed
            print(f"sandbox: recording the invocation failed: {error!r}", file=sys.stderr)

    def _requeue(self, invocation: _Invocation, delay: float) -> None:
        """Back into Lambda's queue after `delay` seconds (call with the condition held)."""
        invocation.due = time.monotonic() + delay
        heapq.heappush(self._queue, invocation)
        self._wake_all()

    def _wake_all(self) -> None:
        """Wake the environments taking events and the spares: the queue or the runtime's
        state changed (call with the condition held; the two share its lock)."""
        self._condition.notify_all()
        self._spare.notify_all()

    def _machinery_failed(self, invocation: _Invocation, error: Exception) -> None:
        """The sandbox itself failed around an invocation: retry it, never drop the event.

        A failed attempt counts as Lambda counts a service error (an error and a retry, up
        to MaximumRetryAttempts); a failed hand-over to the failure queue is tried again.
        """
        print(f"sandbox: invocation machinery failed, will retry: {error!r}", file=sys.stderr)
        with self._condition:
            if invocation.condition is not None:
                delay = max(self._retry_delay, settings.SANDBOX_POLL_INTERVAL_SECONDS)
                self._requeue(invocation, delay)
                return
            self.stats.invocations += 1
            self.stats.errors += 1
            invocation.last_answer = {
                "ok": False,
                "errorType": "Sandbox.InternalError",
                "errorMessage": f"the sandbox failed around the invocation: {error!r}",
            }
            if invocation.attempts <= self.spec.max_retry_attempts:
                self.stats.retries += 1
                delay = self._retry_delay * 2 ** max(invocation.attempts - 1, 0)
            else:
                invocation.condition, delay = "RetriesExhausted", 0.0
            self._requeue(invocation, delay)

    def _to_failure_queue(self, invocation: _Invocation) -> None:
        condition = invocation.condition or "RetriesExhausted"
        if self._failure_queue is None:
            # No destination configured: Lambda discards the event, and so do we (loudly).
            print(
                f"sandbox: event discarded ({condition}), no on-failure destination",
                file=sys.stderr,
            )
            with self._condition:
                self.stats.discarded += 1
            return
        record = failure_record(
            invocation.event,
            self.identity,
            condition=condition,
            attempts=invocation.attempts,
            answer=invocation.last_answer,
        )
        self._sqs.send_message(QueueUrl=self._failure_queue, MessageBody=json.dumps(record))
        with self._condition:
            self.stats.sent_to_failure_queue += 1


def _s3_event(message: dict[str, Any]) -> dict[str, Any] | None:
    """The S3 event a transport message holds; None (said on stderr) if it holds none.

    Only S3 writes to the transport queue; anything else (sent by hand) is no event to
    invoke with, and must not hold up the real events received with it.
    """
    try:
        event = json.loads(message["Body"])
    except ValueError:
        event = None
    if isinstance(event, dict):
        return event
    print(
        f"sandbox: transport message {message.get('MessageId')} is not an S3 event "
        f"(not a JSON object); dropped: {message['Body'][:80]!r}",
        file=sys.stderr,
    )
    return None


@dataclass
class RedriveResult:
    """What a redrive did. Everything not redriven is still in the failure queue."""

    redriven: int = 0
    failed_again: int = 0
    recorded: int = 0  # ledger items the redriven invocations wrote (the handler's count)
    skipped: int = 0  # records they found recorded already or older than the ledger's
    # Messages that aren't failure records (not JSON, no requestPayload): id -> why.
    not_failure_records: dict[str, str] = field(default_factory=dict)
    last_error: str | None = None  # the last failed invocation's "errorType: errorMessage"


def redrive_failures(sqs: Any, queue_url: str, invoke: Callable[[Any], Answer]) -> RedriveResult:
    """Replay each failure record's event through `invoke`; delete those that succeed.

    Records that fail again, and messages that aren't failure records at all, stay in
    the queue (made visible again at the end), so nothing is lost and nothing stops the
    redrive of the others.
    """
    result, keep = RedriveResult(), []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=SQS_BATCH, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            payload, problem = _request_payload(message["Body"])
            if problem is not None:
                result.not_failure_records[message["MessageId"]] = problem
                keep.append(message["ReceiptHandle"])
                continue
            answer = invoke(payload)
            if answer.get("ok"):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                outcome = answer.get("result") or {}
                result.redriven += 1
                result.recorded += int(outcome.get("recorded", 0))
                result.skipped += int(outcome.get("skipped", 0))
            else:
                result.failed_again += 1
                result.last_error = f"{answer.get('errorType')}: {answer.get('errorMessage')}"
                keep.append(message["ReceiptHandle"])
    for handle in keep:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return result


def _request_payload(body: str) -> tuple[Any, str | None]:
    """(the event a failure record holds, None) or (None, why the message isn't one)."""
    try:
        record = json.loads(body)
    except ValueError:
        return None, "not JSON"
    if not isinstance(record, dict) or "requestPayload" not in record:
        return None, "no requestPayload (not an on-failure destination record)"
    return record["requestPayload"], None
