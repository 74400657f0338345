"""The local Lambda runtime under worker and machinery failures: no accepted event is lost.

These run the runtime over tiny handlers in a temporary asset and an in-memory queue
(no emulator), so each failure can be caused exactly.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import settings
from sandbox.faults import Faults
from sandbox.runtime import (
    FunctionIdentity,
    FunctionWorker,
    InvocationObserver,
    InvocationRecord,
    LambdaRuntime,
    redrive_failures,
)
from sandbox.template import FunctionSpec

RETRY_DELAY = 0.01
MAX_RETRIES = 2
# A handler that keeps its CPU busy for 0.3 s: a long invocation that never sleeps.
BUSY_HANDLER = """
import time
def lambda_handler(event, context):
    until = time.process_time() + 0.3
    while time.process_time() < until:
        pass
    return {"recorded": 1}
"""


class MemoryQueues:
    """The few SQS calls the runtime makes, in memory (one transport, one failure queue)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, list[tuple[str, str]]] = {"transport": [], "failures": []}
        self.in_flight: dict[str, tuple[str, str, str]] = {}
        self.send_failures_left = 0
        self._ids = iter(range(1_000_000))

    def put(self, queue: str, body: str) -> None:
        with self.lock:
            self.messages[queue].append((f"m{next(self._ids)}", body))

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> Any:
        """Received messages are invisible until deleted or made visible again."""
        with self.lock:
            taken = self.messages[QueueUrl][:MaxNumberOfMessages]
            del self.messages[QueueUrl][:MaxNumberOfMessages]
            self.in_flight.update({i: (QueueUrl, i, b) for i, b in taken})
        return {"Messages": [{"MessageId": i, "ReceiptHandle": i, "Body": b} for i, b in taken]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[Any]) -> None:
        for entry in Entries:
            self.delete_message(QueueUrl, entry["ReceiptHandle"])

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        with self.lock:
            del self.in_flight[ReceiptHandle]

    def change_message_visibility(
        self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int
    ) -> None:
        with self.lock:
            queue, message_id, body = self.in_flight.pop(ReceiptHandle)
            self.messages[queue].append((message_id, body))

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        with self.lock:
            if self.send_failures_left > 0:
                self.send_failures_left -= 1
                raise ConnectionError("injected: the failure queue is unreachable")
        self.put(QueueUrl, MessageBody)

    def bodies(self, queue: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.messages[queue]]


def make_asset(root: Path, body: str) -> Path:
    """An asset directory whose `handler/app.py` is `body`."""
    package = root / "asset" / "handler"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(textwrap.dedent(body))
    return root / "asset"


def make_runtime(
    asset: Path,
    queues: MemoryQueues,
    *,
    timeout: int = 5,
    concurrency: int = 2,
    max_concurrency: int | None = None,
    scale_out_after: float = 0.2,
    on_invocation: InvocationObserver | None = None,
) -> LambdaRuntime:
    spec = FunctionSpec(
        logical_id="Fn",
        handler="handler.app.lambda_handler",
        asset_dir=asset,
        environment={},
        timeout_seconds=timeout,
        memory_mb=128,
        alias_name="live",
        max_retry_attempts=MAX_RETRIES,
        max_event_age_seconds=3600,
        failure_queue_id="Failures",
    )
    identity = FunctionIdentity(
        "fn", "1", "arn:aws:lambda:eu-central-1:123456789012:function:fn:live", "/aws/lambda/fn"
    )
    return LambdaRuntime(
        spec=spec,
        identity=identity,
        environment={"PATH": os.environ.get("PATH", ""), "MARKS": str(asset.parent / "marks")},
        sqs=queues,
        transport_queue_url="transport",
        failure_queue_url="failures",
        faults=Faults(),
        retry_delay_seconds=RETRY_DELAY,
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        scale_out_after_seconds=scale_out_after,
        on_invocation=on_invocation,
    )


def recording_runtime(
    asset: Path, queues: MemoryQueues, **options: Any
) -> tuple[LambdaRuntime, list[InvocationRecord]]:
    """A runtime (make_runtime's options) and the list its invocations' records go to."""
    records: list[InvocationRecord] = []
    return make_runtime(asset, queues, on_invocation=records.append, **options), records


def scaling_run(
    tmp_path: Path,
    queues: MemoryQueues,
    running: list[LambdaRuntime],
    handler: str,
    *,
    maximum: int,
    events: int,
) -> tuple[LambdaRuntime, list[InvocationRecord]]:
    """`events` events through a runtime of one environment that may scale out to
    `maximum` once an invocation has waited 0.05 s; the runtime and its records."""
    runtime, records = recording_runtime(
        make_asset(tmp_path, handler),
        queues,
        concurrency=1,
        max_concurrency=maximum,
        scale_out_after=0.05,
    )
    running.append(runtime)
    run(runtime, queues, events=events)
    return runtime, records


@pytest.fixture
def queues() -> MemoryQueues:
    return MemoryQueues()


@pytest.fixture
def running(request: pytest.FixtureRequest) -> Iterator[list[LambdaRuntime]]:
    started: list[LambdaRuntime] = []
    yield started
    for runtime in started:
        runtime.stop()


def run(runtime: LambdaRuntime, queues: MemoryQueues, events: int, timeout: float = 60) -> None:
    """Send `events` events through the runtime and wait until it is idle."""
    for n in range(events):
        queues.put("transport", json.dumps({"Records": [{"n": n}]}))
    runtime.start()
    deadline = time.monotonic() + timeout
    while queues.messages["transport"] or runtime.busy():
        assert time.monotonic() < deadline, f"still busy: {runtime.stats}"
        time.sleep(0.02)


def accounted(runtime: LambdaRuntime) -> bool:
    s = runtime.stats
    return s.events_received + s.duplicates_injected == (
        s.succeeded + s.sent_to_failure_queue + s.discarded
    )


def test_a_runtime_that_exits_at_import_sends_every_event_to_the_failure_queue(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    asset = make_asset(tmp_path, "import os\nos._exit(137)\n")
    runtime = make_runtime(asset, queues)
    running.append(runtime)

    run(runtime, queues, events=8)

    records = queues.bodies("failures")
    assert len(records) == 8
    assert sorted(r["requestPayload"]["Records"][0]["n"] for r in records) == list(range(8))
    for record in records:
        assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
        assert (
            "Runtime exited with error: exit status 137"
            in record["responsePayload"]["errorMessage"]
        )
        assert record["requestContext"]["approximateInvokeCount"] == MAX_RETRIES + 1
    assert runtime.stats.sent_to_failure_queue == 8
    assert runtime.stats.retries == 8 * MAX_RETRIES
    assert accounted(runtime)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_each_invocation_records_the_concurrent_executions_when_it_began(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime], concurrency: int
) -> None:
    asset = make_asset(
        tmp_path,
        """
        import time
        def lambda_handler(event, context):
            time.sleep(0.3)
            return {}
        """,
    )
    runtime, records = recording_runtime(asset, queues, concurrency=concurrency)
    running.append(runtime)

    run(runtime, queues, events=4)

    assert len(records) == 4
    # Both environments take an event at once and each runs for 0.3 s at least.
    assert max(r.concurrent_executions for r in records) == concurrency
    assert min(r.concurrent_executions for r in records) >= 1


def test_invocations_that_wait_bring_more_environments_up_to_the_maximum(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    """An invocation sleeping (as the SDK does after a throttle) leaves CPU unused: more
    environments take the waiting events, as Lambda scales out, but never more than the
    maximum."""
    sleepy = """
        import time
        def lambda_handler(event, context):
            time.sleep(1.0)
            return {"recorded": 1}
        """
    runtime, records = scaling_run(tmp_path, queues, running, sleepy, maximum=3, events=8)

    assert runtime.stats.succeeded == 8
    assert max(r.concurrent_executions for r in records) == 3
    assert len(runtime.environment_pids()) == 3


def test_busy_environments_that_do_not_wait_are_not_joined_by_more(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    """Long invocations that use the CPU (runnable, not asleep) don't start environments
    beyond `concurrency`: each would pay a cold start for CPU the working ones use already."""
    runtime, records = scaling_run(tmp_path, queues, running, BUSY_HANDLER, maximum=3, events=5)

    assert runtime.stats.succeeded == 5
    assert {r.concurrent_executions for r in records} == {1}
    assert len(runtime.environment_pids()) == 1


def test_where_the_process_state_is_unknown_only_a_long_invocation_counts_as_waiting(
    tmp_path: Path,
    queues: MemoryQueues,
    running: list[LambdaRuntime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without /proc (another OS) the runtime can't tell busy from asleep: an invocation
    that has run SANDBOX_SCALE_OUT_BLIND_AFTER_SECONDS counts as waiting, whatever it does."""
    monkeypatch.setattr(FunctionWorker, "is_asleep", lambda self: None)
    monkeypatch.setattr(settings, "SANDBOX_SCALE_OUT_BLIND_AFTER_SECONDS", 0.1)
    runtime, records = scaling_run(tmp_path, queues, running, BUSY_HANDLER, maximum=2, events=5)

    assert runtime.stats.succeeded == 5
    assert max(r.concurrent_executions for r in records) == 2


def test_a_killed_environment_fails_the_invocation_as_runtime_exit_error(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    asset = make_asset(
        tmp_path,
        """
        import os, signal
        def lambda_handler(event, context):
            os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    runtime = make_runtime(asset, queues, concurrency=1)
    running.append(runtime)

    run(runtime, queues, events=2)

    records = queues.bodies("failures")
    assert len(records) == 2
    assert {r["responsePayload"]["errorMessage"].split("Error: ")[1] for r in records} == {
        "Runtime exited with error: signal: killed"
    }
    assert accounted(runtime)


def test_a_timed_out_invocation_ends_its_environment_and_is_retried(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    asset = make_asset(
        tmp_path,
        """
        import time
        def lambda_handler(event, context):
            time.sleep(60)
        """,
    )
    runtime = make_runtime(asset, queues, timeout=1, concurrency=1)
    running.append(runtime)

    run(runtime, queues, events=1)

    (record,) = queues.bodies("failures")
    assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in record["responsePayload"]["errorMessage"]
    assert runtime.environment_pids() == []  # the hung environment was stopped, not kept
    assert accounted(runtime)


def test_a_failure_of_the_runtime_machinery_retries_the_event_instead_of_dropping_it(
    tmp_path: Path,
    queues: MemoryQueues,
    running: list[LambdaRuntime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = make_asset(
        tmp_path, "def lambda_handler(event, context):\n    return {'recorded': 1}\n"
    )
    runtime = make_runtime(asset, queues, concurrency=1)
    running.append(runtime)
    from sandbox import runtime as runtime_module

    real_context, calls = runtime_module.lambda_context, []

    def failing_once(*args: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected: our own bug")
        return real_context(*args)

    monkeypatch.setattr(runtime_module, "lambda_context", failing_once)

    run(runtime, queues, events=3)

    assert runtime.stats.succeeded == 3
    assert runtime.stats.recorded == 3
    assert runtime.stats.errors == 1
    assert runtime.stats.retries == 1
    assert queues.bodies("failures") == []
    assert accounted(runtime)


def test_an_unreachable_failure_queue_is_retried_until_the_record_is_delivered(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    asset = make_asset(
        tmp_path, "def lambda_handler(event, context):\n    raise ValueError('bad')\n"
    )
    runtime = make_runtime(asset, queues, concurrency=1)
    running.append(runtime)
    queues.send_failures_left = 3

    run(runtime, queues, events=2)

    records = queues.bodies("failures")
    assert len(records) == 2
    assert {r["responsePayload"]["errorType"] for r in records} == {"ValueError"}
    assert runtime.stats.sent_to_failure_queue == 2
    assert accounted(runtime)


@pytest.mark.parametrize("delay", [math.nan, math.inf, -1.0])
def test_a_retry_delay_that_is_not_a_finite_non_negative_number_is_refused(
    tmp_path: Path, queues: MemoryQueues, delay: float
) -> None:
    asset = make_asset(tmp_path, "def lambda_handler(event, context):\n    return {}\n")
    with pytest.raises(ValueError, match="retry_delay_seconds must be a finite number >= 0"):
        LambdaRuntime(
            spec=make_runtime(asset, queues).spec,
            identity=FunctionIdentity("fn", "1", "arn", "/aws/lambda/fn"),
            environment={},
            sqs=queues,
            transport_queue_url="transport",
            failure_queue_url="failures",
            faults=Faults(),
            retry_delay_seconds=delay,
        )


def test_killing_environments_at_random_loses_no_event(
    tmp_path: Path, queues: MemoryQueues, running: list[LambdaRuntime]
) -> None:
    asset = make_asset(
        tmp_path,
        """
        import json, os, time
        def lambda_handler(event, context):
            time.sleep(0.1 if event["Records"][0]["n"] % 5 == 0 else 0.01)
            with open(os.environ["MARKS"], "a") as marks:
                marks.write(json.dumps(event["Records"][0]["n"]) + "\\n")
            return {"recorded": 1}
        """,
    )
    # One invocation in five waits, so environments scale out while others are killed.
    runtime, records = recording_runtime(
        asset, queues, concurrency=2, max_concurrency=4, scale_out_after=0.05
    )
    running.append(runtime)
    rng, stop, kills = random.Random(11), threading.Event(), []

    def killer() -> None:
        while not stop.wait(rng.uniform(0.02, 0.15)):
            pids = runtime.environment_pids()
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills.append(1)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        run(runtime, queues, events=300, timeout=240)
    finally:
        stop.set()
        thread.join()

    assert kills, "the test killed nothing"
    assert max(r.concurrent_executions for r in records) > 2  # it did scale out
    assert runtime.stats.errors > 0  # some kills hit a running invocation
    marks = (tmp_path / "marks").read_text().split()
    succeeded = {int(n) for n in marks}
    failed = {r["requestPayload"]["Records"][0]["n"] for r in queues.bodies("failures")}
    assert succeeded | failed == set(range(300))
    assert runtime.stats.events_received == 300
    assert accounted(runtime)


def test_redrive_keeps_and_reports_messages_that_are_not_failure_records(
    queues: MemoryQueues,
) -> None:
    queues.put("failures", "not json at all")
    queues.put("failures", json.dumps({"Records": []}))
    queues.put("failures", json.dumps({"requestPayload": {"n": 1}}))
    queues.put("failures", json.dumps({"requestPayload": {"n": 2}}))
    result = redrive_failures(
        queues,
        "failures",
        lambda event: {"ok": event["n"] == 1, "errorType": "E", "errorMessage": "m"},
    )

    assert result.redriven == 1
    assert result.failed_again == 1
    assert result.last_error == "E: m"
    assert sorted(result.not_failure_records.values()) == [
        "no requestPayload (not an on-failure destination record)",
        "not JSON",
    ]
    # Both non-records and the record that failed again stay, visible again.
    assert len(queues.messages["failures"]) == 3
    assert not queues.in_flight


def test_a_transport_message_that_is_not_an_s3_event_does_not_hold_up_the_others(
    tmp_path: Path,
    queues: MemoryQueues,
    running: list[LambdaRuntime],
    capsys: pytest.CaptureFixture[str],
) -> None:
    asset = make_asset(
        tmp_path, "def lambda_handler(event, context):\n    return {'recorded': 1}\n"
    )
    runtime = make_runtime(asset, queues)
    running.append(runtime)
    queues.put("transport", "not json")
    queues.put("transport", "[1, 2]")

    run(runtime, queues, events=3)

    assert runtime.stats.events_received == 3
    assert runtime.stats.succeeded == 3
    assert not queues.in_flight  # every transport message was deleted
    assert capsys.readouterr().err.count("is not an S3 event (not a JSON object); dropped") == 2
