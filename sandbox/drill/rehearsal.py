"""The release drill: a CodeDeploy canary of the function, rehearsed offline on a simulated clock.

Version 1 is the function as built, live on the alias; version 2 is the same asset with
a fault (:mod:`sandbox.drill.fault`). Uploads arrive at a steady or bursty rate; each is
a real PutObject into the sandbox's bucket whose S3 event the alias routes by weight to a
version, which runs the real handler in its own execution environment. Lambda's async
retries (1 minute, then 2 minutes later, through the alias again) and the on-failure
destination are kept. Every invocation publishes its AWS/Lambda metrics and EMF lines
into the metric store at its simulated time.

The release follows the template (:mod:`sandbox.deployment`): at the deployment, the
real pre-traffic hook code checks version 2 (its Lambda client invokes version 2 here,
its CodeDeploy client reports to this drill, DynamoDB is the emulator's); then traffic
shifts by the deployment configuration's steps. Every alarm of the template is evaluated
one second after each simulated minute ends (:mod:`sandbox.alarms`); a state change is
published to the alarm topic (moto's SNS) and the outbox; a watched alarm in ALARM while
the deployment runs stops it and rolls the alias back at once; the EventBridge rule's
message for the failed deployment is published too.

Why its own clock rather than the sandbox's runtime: a 5-minute canary with Lambda's
minute-long retry delays must run in seconds, so time here is an event queue, not the
wall clock; the execution environments, context and failure records are the runtime's.

The model path (`model=True`, for the calibration matrix) replaces only "run the handler"
by the fault's rules and a duration model; routing, retries, metrics, alarms, deployment
and outbox are the same code.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib.util
import io
import itertools
import json
import math
import os
import random
import shutil
import string
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import contract
from sandbox.alarms import ALARM, OK, AlarmDefinition, evaluate, read_alarm
from sandbox.deployment import (
    FAILURE,
    ON_FAILURE,
    STOP,
    STOP_ON_ALARM,
    ReleaseSpec,
    deployment_event,
    read_release,
)
from sandbox.drill import fault as drill_fault
from sandbox.metrics import LAMBDA_NAMESPACE, MetricStore, record_lambda_invocation
from sandbox.outbox import CLOUDWATCH, EVENTBRIDGE, Outbox, region_name
from sandbox.runtime import FunctionIdentity, FunctionWorker, failure_record, lambda_context
from sandbox.template import (
    FunctionSpec,
    ServiceTemplate,
    TemplateError,
    load_service_template,
    ref_target,
)

OLD, NEW = "1", "2"
RETRY_DELAYS_SECONDS = (60, 120)  # Lambda: 1 minute before the 2nd attempt, 2 before the 3rd
INITIAL_ALARM_STATE = OK  # a running service's alarms (README: alarms start in OK)
EVALUATION_OFFSET_SECONDS = 1.0  # alarms run just after a minute ends (publishing delay)
ASYNC_START_SECONDS = 0.1  # from the S3 event to the invocation
BURST_SECONDS = 5.0  # --profile bursty: a minute's uploads arrive within its first 5 s
MODEL_MEDIAN_MS = 8.0  # the model path's handler duration: make bench's warm cost
PROFILES = ("steady", "bursty")


@dataclass(frozen=True)
class DrillOptions:
    """What to rehearse."""

    fault: drill_fault.Fault = field(default_factory=drill_fault.Fault)
    background_errors: float = 0.0
    uploads_per_minute: float = 60.0
    profile: str = "steady"
    seed: int = 1
    baseline_minutes: int = 2  # version 1 alone before the deployment starts
    after_minutes: int = 2  # traffic kept after the decision (rollback or 100%)
    model: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.uploads_per_minute) and self.uploads_per_minute > 0):
            raise ValueError("--uploads-per-minute must be a number more than 0")
        if not 0.0 <= self.background_errors <= 1.0:
            raise ValueError("--background-errors must be a share between 0 and 1")
        if self.profile not in PROFILES:
            raise ValueError(f"--profile must be one of {', '.join(PROFILES)}")


@dataclass(frozen=True)
class Outcome:
    """One invocation as the caller sees it."""

    ok: bool
    duration_ms: float
    payload: Any = None
    emf_lines: tuple[str, ...] = ()


class Invoker(Protocol):
    def invoke(self, version: str, event: Any, qualifier: str) -> Outcome: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Names:
    """The deployed names the drill's messages and metrics carry."""

    function: str
    alias: str
    region: str
    account: str
    application: str
    deployment_group: str

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function}"


@dataclass
class _Pending:
    event: Any
    attempts: int = 0
    last_answer: dict[str, Any] | None = None


@dataclass
class MinuteState:
    """What the timeline shows for one simulated minute."""

    start: float
    weight: float = 0.0  # % of traffic on version 2 at the minute's end
    alarms: dict[str, str] = field(default_factory=dict)  # after the evaluation at its end
    events: list[str] = field(default_factory=list)


@dataclass
class DrillResult:
    """How the release ended, and the trail."""

    outcome: str  # "success" | "rollback"
    state: str  # the deployment's final status: Succeeded, Failed (hook) or Stopped (alarm)
    cause: str  # why it ended so (the hook's report, the alarms in ALARM)
    deployment_id: str
    started_at: float
    deployed_at: float
    decided_at: float | None
    minutes: list[MinuteState]
    alarm_names: list[str]
    gating: list[str]
    notifications: list[Any]
    failure_queue: int = 0
    invocations: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the timeline


class Drill:
    """The simulation: traffic, routing, retries, alarms and the deployment, on one clock."""

    def __init__(
        self,
        *,
        options: DrillOptions,
        release: ReleaseSpec,
        alarms: list[AlarmDefinition],
        gating: list[str],
        invoker: Invoker,
        arrive: Callable[[str, float], list[Any]],
        run_hook: Callable[[Drill, str], tuple[bool, str]],
        store: MetricStore,
        outbox: Outbox,
        names: Names,
        max_retry_attempts: int,
        to_failure_queue: Callable[[_Pending], None],
        start: float,
    ) -> None:
        self.options, self.release, self.alarms, self.gating = options, release, alarms, gating
        self.invoker, self.store, self.outbox, self.names = invoker, store, outbox, names
        self._arrive, self._run_hook, self._to_failure_queue = arrive, run_hook, to_failure_queue
        self._max_attempts = 1 + max_retry_attempts
        self._random = random.Random(options.seed)
        # (time, priority, sequence, kind, data): a minute opens before what happens in it.
        self._queue: list[tuple[float, int, int, str, Any]] = []
        self._sequence = itertools.count()
        self.start = start
        self.deploy_at = start + 60 * options.baseline_minutes
        last_step = release.shifting.steps[-1][0]
        self._traffic_end = self.deploy_at + 60 * (last_step + options.after_minutes)
        self.weight = 0.0
        self.state = "NotStarted"
        self.decided_at: float | None = None
        self.cause = ""
        naming = random.SystemRandom()  # a new id per deployment, as CodeDeploy gives
        self.deployment_id = "d-" + "".join(
            naming.choices(string.ascii_uppercase + string.digits, k=9)
        )
        self.alarm_states = {alarm.name: INITIAL_ALARM_STATE for alarm in alarms}
        self.minutes: list[MinuteState] = []
        self.invocations = {OLD: 0, NEW: 0}
        self.errors = {OLD: 0, NEW: 0}
        self.failed_events = 0
        self._uploads = 0

    # The event queue
    def _at(self, when: float, kind: str, data: Any = None) -> None:
        priority = 0 if kind == "minute" else 1
        heapq.heappush(self._queue, (when, priority, next(self._sequence), kind, data))

    def run(self) -> None:
        handlers: dict[str, Callable[[float, Any], None]] = {
            "minute": lambda now, _: self._minute(now),
            "upload": lambda now, _: self._upload(now),
            "invoke": self._invoke,
            "evaluate": lambda now, _: self._evaluate(now),
            "deploy": lambda now, _: self._deploy(now),
            "shift": lambda now, percent: self._shift(now, float(percent)),
            "sample": lambda now, _: self._sample(),
        }
        self._at(self.start, "minute")
        self._at(self.deploy_at, "deploy")
        while self._queue:
            now, _, _, kind, data = heapq.heappop(self._queue)
            handlers[kind](now, data)

    def _sample(self) -> None:
        self.minutes[-1].weight = self.weight  # the timeline's "v2 %": the weight mid-minute

    def _minute(self, now: float) -> None:
        """Open a minute: its uploads, the alarm evaluation at its end, the next minute."""
        self.minutes.append(MinuteState(now))
        self._at(now + 60 + EVALUATION_OFFSET_SECONDS, "evaluate")
        self._at(now + 30, "sample")  # the timeline's "v2 %": the weight mid-minute
        if now < self._traffic_end:
            for offset in self._arrivals(len(self.minutes) - 1):
                self._at(now + offset, "upload")
        if now + 60 < self._traffic_end or self._pending_invocations(after=now + 60):
            self._at(now + 60, "minute")

    def _arrivals(self, index: int) -> list[float]:
        rate = self.options.uploads_per_minute
        if self.options.profile == "bursty":
            count = _poisson(self._random, rate)
            return sorted(self._random.uniform(0, BURST_SECONDS) for _ in range(count))
        count = math.floor((index + 1) * rate) - math.floor(index * rate)
        return [60.0 * (n + 0.5) / count for n in range(count)]

    def _upload(self, now: float) -> None:
        minute = int((now - self.start) // 60)
        key = f"uploads/minute-{minute:02d}/file-{self._uploads:06d}.csv"
        self._uploads += 1
        for event in self._arrive(key, now):
            self._at(now + ASYNC_START_SECONDS, "invoke", _Pending(event))

    # Lambda: the alias routes each attempt by weight
    def _invoke(self, now: float, pending: _Pending) -> None:
        version = NEW if self._random.random() * 100 < self.weight else OLD
        outcome = self.invoke_version(version, pending.event, self.names.alias, now)
        if outcome.ok:
            return
        pending.attempts += 1
        pending.last_answer = outcome.payload if isinstance(outcome.payload, dict) else None
        if pending.attempts < self._max_attempts:
            self._at(now + RETRY_DELAYS_SECONDS[pending.attempts - 1], "invoke", pending)
            return
        self.failed_events += 1
        self._to_failure_queue(pending)

    def invoke_version(self, version: str, event: Any, qualifier: str, now: float) -> Outcome:
        """Run one invocation and publish what Lambda and CloudWatch Logs would."""
        outcome = self.invoker.invoke(version, event, qualifier)
        record_lambda_invocation(
            self.store,
            function_name=self.names.function,
            qualifier=qualifier,
            executed_version=version,
            timestamp=now,
            duration_ms=outcome.duration_ms,
            error=not outcome.ok,
            emf_lines=outcome.emf_lines,
            emf_timestamp=now,
        )
        if qualifier == self.names.alias:
            self.invocations[version] += 1
            self.errors[version] += int(not outcome.ok)
        return outcome

    # CodeDeploy
    def _deploy(self, now: float) -> None:
        self.state = "InProgress"
        self._note(now, f"deployment {self.deployment_id} of version {NEW} starts")
        if self.release.hook is not None:
            passed, detail = self._run_hook(self, self.deployment_id)
            self._note(now, f"pre-traffic hook: {detail}")
            if not passed:
                self.cause = f"the pre-traffic hook: {detail}"
                self._end(now, FAILURE, rollback=self.release.rolls_back_on(ON_FAILURE))
                return
        for minute, percent in self.release.shifting.steps:
            self._at(now + 1 + 60 * minute, "shift", percent)

    def _shift(self, now: float, percent: float) -> None:
        if self.state != "InProgress":
            return
        self.weight = percent
        if percent >= 100:
            self._note(now, f"100% on version {NEW}: deployment succeeded")
            self.state, self.decided_at = "Succeeded", now
            self._traffic_end = min(self._traffic_end, now + 60 * self.options.after_minutes)
        else:
            self._note(now, f"{percent:g}% of traffic to version {NEW}")

    def _end(
        self, now: float, state: str, *, rollback: bool, row: MinuteState | None = None
    ) -> None:
        self.state = "Failed" if state == FAILURE else "Stopped"
        self.decided_at = now
        if rollback:
            self.weight = 0.0
            text = f"rolled back: the alias sends everything to version {OLD}"
            if row is not None:
                row.events.append(text)
            else:
                self._note(now, text)
        self._traffic_end = min(self._traffic_end, now + 60 * self.options.after_minutes)
        event = deployment_event(
            state=state,
            deployment_id=self.deployment_id,
            application=self.names.application,
            deployment_group=self.names.deployment_group,
            region=self.names.region,
            account=self.names.account,
            time=_iso_seconds(now),
        )
        for rule in self.release.rules:
            if rule.matches(event):
                for arn, transformer in rule.targets:
                    message = rule.input_for(event, transformer)
                    self.outbox.send(arn, message, subject=None, timestamp=now, source=EVENTBRIDGE)

    # CloudWatch
    def _evaluate(self, now: float) -> None:
        minute = self.minutes[int((now - EVALUATION_OFFSET_SECONDS - 60 - self.start) // 60)]
        for alarm in self.alarms:
            old = self.alarm_states[alarm.name]
            evaluation = evaluate(alarm, self.store, now, old)
            if evaluation.state != old:
                self.alarm_states[alarm.name] = evaluation.state
                self._alarm_changed(alarm, evaluation, old, minute)
        minute.alarms = dict(self.alarm_states)
        in_alarm = [name for name in self.gating if self.alarm_states[name] == ALARM]
        if self.state == "InProgress" and self.weight > 0 and in_alarm:
            minute.events.append(
                f"CodeDeploy sees {', '.join(in_alarm)} in ALARM: deployment stopped"
            )
            self.cause = ", ".join(in_alarm)
            self._end(now, STOP, rollback=self.release.rolls_back_on(STOP_ON_ALARM), row=minute)

    def _alarm_changed(
        self, alarm: AlarmDefinition, evaluation: Any, old: str, minute: MinuteState
    ) -> None:
        from sandbox.alarms import alarm_message  # noqa: PLC0415 - keeps the import list short

        minute.events.append(f"{alarm.name}: {old} -> {evaluation.state}")
        actions = {ALARM: alarm.alarm_actions, OK: alarm.ok_actions}.get(
            evaluation.state, alarm.insufficient_data_actions
        )
        message = alarm_message(
            alarm,
            evaluation,
            old_state=old,
            account=self.names.account,
            region=self.names.region,
            region_name=region_name(self.names.region),
        )
        subject = f'{evaluation.state}: "{alarm.name}" in {region_name(self.names.region)}'
        for arn in actions:
            self.outbox.send(
                arn,
                json.dumps(message),
                subject=subject,
                timestamp=evaluation.evaluated_at,
                source=CLOUDWATCH,
            )

    def _pending_invocations(self, after: float) -> bool:
        return any(t >= after and kind in ("invoke", "upload") for t, _, _, kind, _ in self._queue)

    def _note(self, now: float, text: str) -> None:
        index = min(int((now - self.start) // 60), len(self.minutes) - 1)
        self.minutes[index].events.append(text)

    def timeline(self) -> list[dict[str, Any]]:
        """One row per simulated minute (columns: see sandbox.drill.report)."""
        names, store = self.names, self.store
        alias = {"FunctionName": names.function, "Resource": f"{names.function}:{names.alias}"}

        def total(metric: str, dimensions: dict[str, str], start: float) -> int:
            points = store.statistic(
                LAMBDA_NAMESPACE, metric, dimensions, "Sum", 60, start, start + 60
            )
            return int(sum(v for _, v in points))

        rows = []
        for minute in self.minutes:
            start = minute.start
            versions = {}
            for version in (OLD, NEW):
                dims = {**alias, "ExecutedVersion": version}
                versions[version] = {
                    "invocations": total("Invocations", dims, start),
                    "errors": total("Errors", dims, start),
                }
            p99 = store.statistic(LAMBDA_NAMESPACE, "Duration", alias, "p99", 60, start, start + 60)
            rows.append(
                {
                    "minute": _hhmm(start),
                    "offset": int((start - self.deploy_at) // 60),
                    "weight": minute.weight,
                    "versions": versions,
                    "p99_ms": round(p99[0][1], 1) if p99 else None,
                    "alarms": {name: minute.alarms.get(name, "") for name in self.gating},
                    "events": list(minute.events),
                }
            )
        return rows

    def result(self) -> DrillResult:
        rolled_back = self.state in ("Failed", "Stopped")
        return DrillResult(
            outcome="rollback" if rolled_back else "success",
            state=self.state,
            cause=self.cause,
            deployment_id=self.deployment_id,
            started_at=self.start,
            deployed_at=self.deploy_at,
            decided_at=self.decided_at,
            minutes=self.minutes,
            alarm_names=[a.name for a in self.alarms],
            gating=self.gating,
            notifications=list(self.outbox.sent),
            failure_queue=self.failed_events,
            invocations=dict(self.invocations),
            errors=dict(self.errors),
            rows=self.timeline(),
        )


def _hhmm(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%H:%M")


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, normal approximation for large)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _iso_seconds(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Invokers: the real handler in execution environments, or the model
class SandboxInvoker:
    """Each version in its own execution environment, running its asset's real code."""

    def __init__(
        self,
        specs: dict[str, FunctionSpec],
        environments: dict[str, dict[str, str]],
        identities: dict[str, FunctionIdentity],
        latency_ms: dict[str, float],
        log: Any,
    ) -> None:
        self._specs, self._identities, self._latency = specs, identities, latency_ms
        self._workers = {v: FunctionWorker(specs[v], environments[v], log) for v in specs}

    def invoke(self, version: str, event: Any, qualifier: str) -> Outcome:
        spec, identity = self._specs[version], self._identities[version]
        arn = f"{identity.invoked_arn.rsplit(':', 1)[0]}:{qualifier}"
        context = lambda_context(spec, replace(identity, invoked_arn=arn))
        answer = self._workers[version].invoke(event, context, float(spec.timeout_seconds))
        return _with_latency(
            answer, self._latency.get(version, 0.0), spec.timeout_seconds, context["aws_request_id"]
        )

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()


def _with_latency(
    answer: dict[str, Any], latency_ms: float, timeout_s: int, request_id: str
) -> Outcome:
    """The answer with the fault's extra latency; past the timeout it is a timeout."""
    duration = float(answer.get("durationMs") or 0.0)
    if answer.get("errorType") == "Sandbox.Timedout":
        duration = timeout_s * 1000.0
    duration += latency_ms
    emf = tuple(answer.get("emf") or ())
    if duration > timeout_s * 1000:
        timed_out = {
            "ok": False,
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"{request_id} Task timed out after {timeout_s:.2f} seconds",
        }
        return Outcome(False, timeout_s * 1000.0, timed_out, ())
    return Outcome(bool(answer.get("ok")), duration, answer, emf)


class ModelInvoker:
    """No handler runs: the fault's own rules decide failures; durations are modelled."""

    def __init__(
        self,
        plans: dict[str, drill_fault.Plan],
        latency_ms: dict[str, float],
        timeout_s: int,
        seed: int,
    ) -> None:
        self._plans, self._latency, self._timeout = plans, latency_ms, timeout_s
        self._random = random.Random(seed + 17)

    def invoke(self, version: str, event: Any, qualifier: str) -> Outcome:
        reason = self._plans[version].failure(event)
        duration = MODEL_MEDIAN_MS * self._random.lognormvariate(0.0, 0.35)
        answer: dict[str, Any] = {"ok": reason is None, "durationMs": duration}
        if reason is not None:
            answer.update(errorType="DrillFaultError", errorMessage=reason)
        return _with_latency(answer, self._latency.get(version, 0.0), self._timeout, "model")

    def close(self) -> None:
        """Nothing to release."""


def load_hook_module(asset_dir: Path, handler: str, region: str) -> ModuleType:
    """The hook's code from its asset in cdk.out, under a private module name.

    Its init phase builds boto3 clients, which need the Region Lambda would set.
    """
    module_path = handler.rpartition(".")[0].replace(".", "/") + ".py"
    spec = importlib.util.spec_from_file_location("sandbox_drill_hook", asset_dir / module_path)
    if spec is None or spec.loader is None:
        raise TemplateError(f"cannot load the pre-traffic hook from {asset_dir / module_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
    return module


class _HookLambda:
    """The hook's Lambda client: Invoke of the new version, answered by the drill."""

    def __init__(self, drill: Drill, clock: Callable[[], float]) -> None:
        self._drill, self._clock = drill, clock

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        version = FunctionName.rsplit(":", 1)[-1]
        outcome = self._drill.invoke_version(version, json.loads(Payload), version, self._clock())
        answer = outcome.payload if isinstance(outcome.payload, dict) else {}
        body = (
            answer.get("result")
            if outcome.ok
            else {k: answer[k] for k in ("errorMessage", "errorType") if k in answer}
        )
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": version,
            "Payload": io.BytesIO(json.dumps(body).encode()),
        }
        if not outcome.ok:
            response["FunctionError"] = "Unhandled"
        return response


class _HookCodeDeploy:
    """The hook's CodeDeploy client: records the lifecycle hook's reported status."""

    def __init__(self) -> None:
        self.status: str | None = None

    def put_lifecycle_event_hook_execution_status(self, **request: str) -> dict[str, str]:
        self.status = request["status"]
        return {"lifecycleEventHookExecutionId": request["lifecycleEventHookExecutionId"]}


class Rehearsal:
    """Sets a drill up over a running sandbox (or the model), runs it, and cleans up."""

    def __init__(
        self, cdk_out: Path, options: DrillOptions, outbox_dir: Path, work_dir: Path
    ) -> None:
        self.cdk_out, self.options, self.outbox_dir, self.work_dir = (
            cdk_out,
            options,
            outbox_dir,
            work_dir,
        )
        self._log: Any = None

    def run(self, sandbox: Any = None) -> DrillResult:
        """Rehearse once, in `sandbox` (opened with start_runtime=False) or a new one."""
        from sandbox.sandbox import Sandbox  # noqa: PLC0415 - moto loads only when needed

        self.work_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.work_dir / "function.log"
        if sandbox is not None:
            sandbox.metrics = MetricStore()  # each rehearsal reads only its own datapoints
            return self._run(sandbox, log_path)
        with Sandbox(self.cdk_out, function_log=log_path, start_runtime=False) as opened:
            return self._run(opened, log_path)

    def _run(self, sandbox: Any, log_path: Path) -> DrillResult:
        # Read from this rehearsal's cdk.out: the sandbox deployed the same stack from it
        # (or from a copy that differs only in what the drill reads, as tests do).
        template = load_service_template(self.cdk_out)
        sandbox.current_version = NEW  # the template's current version is the one released
        resolve, names = self._resolver(sandbox, template)
        release = read_release(template, resolve)
        alarms = [
            read_alarm(lid, r.get("Properties", {}), resolve)
            for lid, r in template.resources.items()
            if r.get("Type") == "AWS::CloudWatch::Alarm"
        ]
        gating = [resolve(ref, "deployment group alarm") for ref in release.alarm_refs]
        if not release.alarms_enabled:
            gating = []
        sns = sandbox.client("sns")
        outbox = Outbox(self.outbox_dir, sns)
        outbox.clear()  # the outbox (and the console's notifications panel) is this drill's
        store = sandbox.metrics
        store.set_mirror(None)  # simulated timestamps stay out of the emulator's CloudWatch
        invoker = self._invoker(sandbox, template, log_path)
        hook = (
            load_hook_module(release.hook.asset_dir, release.hook.handler, sandbox.region)
            if release.hook
            else None
        )
        start = time.time() // 60 * 60
        clock = {"now": start}
        # S3's, SQS's and DynamoDB's metrics on the drill's clock, beside Lambda's.
        sandbox.use_clock(lambda: clock["now"])
        drill = Drill(
            options=self.options,
            release=release,
            alarms=alarms,
            gating=gating,
            invoker=invoker,
            arrive=self._arrivals(sandbox, hook, clock),
            run_hook=self._hook_runner(sandbox, hook, resolve, names, clock),
            store=store,
            outbox=outbox,
            names=names,
            max_retry_attempts=template.function.max_retry_attempts,
            to_failure_queue=self._failure_sink(sandbox, names),
            start=start,
        )
        try:
            drill.run()
        finally:
            invoker.close()
            if self._log is not None:
                self._log.close()
        return drill.result()

    def _resolver(
        self, sandbox: Any, template: ServiceTemplate
    ) -> tuple[Callable[[Any, str], str], Names]:
        extra = _release_names(sandbox, template)
        resolver = _DrillResolver(sandbox.resolver, extra)
        application_id, group_id = read_release_ids(template)
        names = Names(
            function=sandbox.function_name,
            alias=template.function.alias_name,
            region=sandbox.region,
            account=sandbox.account,
            application=extra.get(application_id, "application"),
            deployment_group=extra.get(group_id, "deployment-group"),
        )
        return resolver.resolve, names

    def _invoker(self, sandbox: Any, template: ServiceTemplate, log_path: Path) -> Invoker:
        options = self.options
        latency = {NEW: options.fault.latency_ms} if options.fault.kind == "latency" else {}
        if options.model:
            plans = {
                OLD: drill_fault.Plan(drill_fault.Fault(), options.background_errors, options.seed),
                NEW: drill_fault.Plan(options.fault, options.background_errors, options.seed + 1),
            }
            return ModelInvoker(plans, latency, template.function.timeout_seconds, options.seed)
        specs, environments, identities = {}, {}, {}
        for version, fault in ((OLD, drill_fault.Fault()), (NEW, options.fault)):
            spec = self._version_asset(template.function, version, fault)
            environment = {
                **sandbox.function_environment,
                "AWS_LAMBDA_FUNCTION_VERSION": version,
                drill_fault.ENV_FAULT: _fault_spec(fault),
                drill_fault.ENV_BACKGROUND: str(options.background_errors),
                drill_fault.ENV_SEED: str(options.seed + int(version)),
                drill_fault.ENV_HANDLER: template.function.handler,
            }
            specs[version], environments[version] = spec, environment
            identities[version] = FunctionIdentity(
                name=sandbox.function_name,
                version=version,
                invoked_arn=f"arn:aws:lambda:{sandbox.region}:{sandbox.account}:function:"
                f"{sandbox.function_name}:{template.function.alias_name}",
                log_group=f"/aws/lambda/{sandbox.function_name}",
            )
        log = log_path.open("ab")
        self._log = log
        return SandboxInvoker(specs, environments, identities, latency, log)

    def _version_asset(
        self, function: FunctionSpec, version: str, fault: drill_fault.Fault
    ) -> FunctionSpec:
        """Version 1 is the asset as built; a version with a fault gets the fault's wrapper."""
        if fault.kind == "none" and self.options.background_errors == 0:
            return function
        target = self.work_dir / f"version-{version}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(function.asset_dir, target)
        shutil.copy(Path(drill_fault.__file__), target / "drill_fault.py")
        return replace(function, asset_dir=target, handler=drill_fault.ENTRY)

    def _arrivals(
        self, sandbox: Any, hook: ModuleType | None, clock: dict[str, float]
    ) -> Callable[[str, float], list[Any]]:
        if self.options.model:

            def synthetic(key: str, now: float) -> list[Any]:
                return [_s3_event(sandbox.bucket_name, key)]

            return synthetic
        sqs = sandbox.client("sqs")

        def upload(key: str, now: float) -> list[Any]:
            clock["now"] = now
            sandbox.upload(key, b"drill upload\n")
            return _receive(sqs, sandbox.transport_queue_url)

        return upload

    def _hook_runner(
        self,
        sandbox: Any,
        hook: ModuleType | None,
        resolve: Callable[[Any, str], str],
        names: Names,
        clock: dict[str, float],
    ) -> Callable[[Drill, str], tuple[bool, str]]:
        def run(drill: Drill, deployment_id: str) -> tuple[bool, str]:
            clock["now"] = drill.deploy_at
            target = f"{names.function_arn}:{NEW}"
            if self.options.model or hook is None:
                key = f"{contract.HEALTHCHECK_KEY_PREFIX}{deployment_id}"
                outcome = drill.invoke_version(
                    NEW, _s3_event(sandbox.bucket_name, key), NEW, drill.deploy_at
                )
                status = "Succeeded" if outcome.ok else "Failed"
                return outcome.ok, f"{status} (model: a synthetic upload through version {NEW})"
            spec = drill.release.hook
            assert spec is not None  # noqa: S101 - hook is loaded only when the spec has one
            environment = spec.environment
            settings = hook.Settings(
                target_version_arn=target,
                table_name=resolve(environment[contract.HOOK_ENV_TABLE_NAME], "hook TABLE_NAME"),
                bucket_name=resolve(environment[contract.HOOK_ENV_BUCKET_NAME], "hook bucket"),
                key_prefix=resolve(environment[contract.HOOK_ENV_KEY_PREFIX], "hook key prefix"),
            )
            codedeploy = _HookCodeDeploy()
            clients = hook.Clients(
                lambda_=_HookLambda(drill, lambda: clock["now"]),
                dynamodb=sandbox.client("dynamodb"),
                codedeploy=codedeploy,
            )
            event = {
                "DeploymentId": deployment_id,
                "LifecycleEventHookExecutionId": f"hook-{deployment_id}",
            }
            try:
                with (self.work_dir / "hook.log").open("a") as log, contextlib.redirect_stdout(log):
                    hook.handle(event, clients, settings)
            except Exception as error:  # the hook's own failure: CodeDeploy times it out
                return (
                    False,
                    f"the hook failed to report ({error}); CodeDeploy fails the deployment",
                )
            passed = codedeploy.status == "Succeeded"
            return passed, f"{codedeploy.status} (the hook's code against version {NEW})"

        return run

    def _failure_sink(self, sandbox: Any, names: Names) -> Callable[[_Pending], None]:
        sqs = sandbox.client("sqs")
        identity = FunctionIdentity(names.function, OLD, f"{names.function_arn}:{names.alias}", "")

        def send(pending: _Pending) -> None:
            if self.options.model or not sandbox.failure_queue_url:
                return
            record = failure_record(
                pending.event,
                identity,
                condition="RetriesExhausted",
                attempts=pending.attempts,
                answer=pending.last_answer,
            )
            sqs.send_message(QueueUrl=sandbox.failure_queue_url, MessageBody=json.dumps(record))

        return send


def _release_names(sandbox: Any, template: ServiceTemplate) -> dict[str, str]:
    """Names for what the sandbox doesn't deploy but a release names: the alarm topic
    (created in the emulator's SNS), the alarms, CodeDeploy's application and group."""
    suffix = sandbox.function_name.rsplit("-", 1)[-1]
    extra: dict[str, str] = {}
    for lid, resource in template.resources.items():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        generated = f"{template.stack_name}-{lid}-{suffix}"
        if kind == "AWS::SNS::Topic":
            extra[lid] = sandbox.client("sns").create_topic(Name=generated)["TopicArn"]
        elif kind == "AWS::CloudWatch::Alarm" and isinstance(props.get("AlarmName"), str):
            extra[lid] = props["AlarmName"]
        elif kind in ("AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup"):
            extra[lid] = generated
    return extra


class _DrillResolver:
    """The sandbox's resolver, plus what a release's template values refer to."""

    def __init__(self, base: Any, extra: dict[str, str]) -> None:
        self._base, self._extra = base, extra

    def resolve(self, value: Any, where: str) -> str:
        if isinstance(value, dict) and "Ref" in value and ref_target(value) in self._extra:
            return self._extra[str(ref_target(value))]
        get_att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        if isinstance(get_att, list):
            return self._get_att(get_att, where)
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self.resolve(p, where) for p in parts)
        return str(self._base.resolve(value, where))

    def _get_att(self, get_att: list[Any], where: str) -> str:
        if get_att[1] == "Version":
            return NEW  # the template's current version is the one being released
        if get_att[1] == "QueueName":
            return str(self._base.resolve({"Ref": get_att[0]}, where)).rsplit("/", 1)[-1]
        return str(self._base.resolve({"Fn::GetAtt": get_att}, where))


def read_release_ids(template: ServiceTemplate) -> tuple[str, str]:
    """(application id, deployment group id) named by the alias's update policy."""
    for resource in template.resources.values():
        policy = resource.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate")
        if policy:
            return (
                str(ref_target(policy.get("ApplicationName"))),
                str(ref_target(policy.get("DeploymentGroupName"))),
            )
    raise TemplateError("no alias has a CodeDeploy update policy (CodeDeployLambdaAliasUpdate)")


def _fault_spec(fault: drill_fault.Fault) -> str:
    if fault.kind == "errors":
        return f"errors:{fault.share}"
    if fault.kind == "keys":
        return f"keys:{fault.glob}"
    if fault.kind == "crash":
        return "crash"
    return "none"  # latency is added by the drill, not by the version's code


def _s3_event(bucket: str, key: str) -> dict[str, Any]:
    from urllib.parse import quote_plus  # noqa: PLC0415

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": quote_plus(key, safe="/"), "size": 13},
                },
            }
        ]
    }


def _receive(sqs: Any, queue_url: str) -> list[Any]:
    """The S3 events the upload produced, from the transport queue (never a TestEvent)."""
    events: list[Any] = []
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("Event") != "s3:TestEvent":
                events.append(body)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if events:
            return events
        time.sleep(0.005)
    return events
