"""The sandbox: the service "deployed" from its own template into moto, with a local runtime.

    with Sandbox(Path("cdk.out"), Faults(duplicate_rate=0.2)) as sb:
        sb.upload("reports/q1 2024.csv", b"...")
        sb.wait_until_idle(timeout=30)
        print(sb.ledger())

How it maps to AWS: the bucket, the table and the failure queue are created as the
template defines them; the bucket's notification (its event types and filters) goes to
an SQS transport queue instead of the function, because moto needs Docker to invoke
functions; the runtime in :mod:`sandbox.runtime` carries the events from there to the
real handler, loaded from the function's asset in `cdk.out`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

import contract
from sandbox import settings
from sandbox.emulator_process import EmulatorProcess
from sandbox.faults import FaultProxy, Faults
from sandbox.metrics import (
    BackgroundMirror,
    MetricStore,
    cloudwatch_mirror,
    record_lambda_invocation,
)
from sandbox.runtime import FunctionIdentity, InvocationRecord, LambdaRuntime, RedriveResult
from sandbox.service_metrics import ServiceMetrics, bucket_metrics_filters
from sandbox.template import (
    Physical,
    Resolver,
    ServiceTemplate,
    load_service_template,
    physical_name,
)

# The function's version behind the alias: the template publishes one (CurrentVersion).
FUNCTION_VERSION = "1"
Progress = Callable[[str], None]


class SandboxBusyError(RuntimeError):
    """Another sandbox is open in this process (moto's state is process-wide)."""


class Sandbox:
    """moto on 127.0.0.1, the service deployed from `cdk.out`, and the local Lambda runtime."""

    _open_lock = threading.Lock()

    def __init__(
        self,
        cdk_out: Path = Path("cdk.out"),
        faults: Faults | None = None,
        retry_delay_seconds: float = settings.SANDBOX_RETRY_DELAY_SECONDS,
        *,
        concurrency: int = settings.SANDBOX_CONCURRENCY,
        max_concurrency: int = settings.SANDBOX_MAX_CONCURRENCY,
        port: int = 0,
        function_log: Path | None = None,
        start_runtime: bool = True,
    ) -> None:
        self.template: ServiceTemplate = load_service_template(Path(cdk_out))
        self.faults = faults or Faults()
        self.region = self.template.region or settings.SANDBOX_FALLBACK_REGION
        self.account = settings.SANDBOX_ACCOUNT_ID
        self._retry_delay = retry_delay_seconds
        self._concurrency = concurrency
        self._max_concurrency = max_concurrency
        self._port = port
        self._function_log_path = function_log
        # False for callers that invoke the function themselves (the release drill).
        self._start_runtime = start_runtime
        self.resolver: Resolver | None = None  # the template's references -> physical names
        self._log: IO[bytes] | None = None
        self._moto: EmulatorProcess | None = None
        # True while a simulated clock stamps the service metrics (see use_clock).
        self._observe_in_order = False
        self._mirror: BackgroundMirror | None = None
        self._proxy: FaultProxy | None = None
        self._runtime: LambdaRuntime | None = None
        self._clients: dict[str, Any] = {}
        self._holds_lock = False
        self.endpoint_url = ""
        self.bucket_name = ""
        self.table_name = ""
        self.failure_queue_url = ""
        self.transport_queue_url = ""
        self.function_name = ""
        self.function_environment: dict[str, str] = {}
        # The version the template's current version resolves to (`Fn::GetAtt [Version,
        # Version]`): the one version deployed here; a release drill sets the one it releases.
        self.current_version = FUNCTION_VERSION
        # Lambda's AWS/Lambda metrics and the handler's EMF metrics (see sandbox.metrics).
        self.metrics = MetricStore()
        # What S3, SQS and DynamoDB publish about the service (see sandbox.service_metrics).
        self.service_metrics: ServiceMetrics | None = None

    # Life cycle
    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start moto, deploy the template's resources, start the fault proxy and runtime."""
        if not Sandbox._open_lock.acquire(blocking=False):
            raise SandboxBusyError("a sandbox is already open in this process; close it first")
        self._holds_lock = True
        try:
            self._moto = EmulatorProcess(port=self._port)
            self._moto.start()
            self.endpoint_url = self._moto.url
            identity, environment = self._deploy(uuid.uuid4().hex[:10])
            self._mirror = BackgroundMirror(cloudwatch_mirror(self.client("cloudwatch")))
            self.metrics.set_mirror(self._mirror)
            self._proxy = FaultProxy(self.endpoint_url, self.faults)
            self._proxy.start()
            self._start_service_metrics(self._moto, self._proxy)
            environment["AWS_ENDPOINT_URL"] = self._proxy.url
            self.function_environment = environment
            if self._function_log_path is not None:
                self._function_log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = self._function_log_path.open("ab")
                self._log.write(self._log_header().encode())
                self._log.flush()
            self._runtime = LambdaRuntime(
                spec=self.template.function,
                identity=identity,
                environment=environment,
                sqs=self.client("sqs"),
                transport_queue_url=self.transport_queue_url,
                failure_queue_url=self.failure_queue_url or None,
                faults=self.faults,
                retry_delay_seconds=self._retry_delay,
                concurrency=self._concurrency,
                max_concurrency=self._max_concurrency,
                log=self._log,
                on_invocation=self._publish_metrics,
            )
            if self._start_runtime:
                self._runtime.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop everything this sandbox started; safe to call twice and after a failed start."""
        steps: list[Callable[[], None]] = []
        if self.service_metrics is not None:
            steps.append(self.service_metrics.stop)
        if self._runtime is not None:
            steps.append(self._runtime.stop)
        if self._proxy is not None:
            steps.append(self._proxy.stop)
        if self._mirror is not None:
            # Sends what is queued, while the client and the emulator are still up.
            steps += [lambda: self.metrics.set_mirror(None), self._mirror.close]
        steps += [client.close for client in self._clients.values()]
        if self._moto is not None:
            steps.append(self._moto.stop)  # its process held moto's state: nothing to reset
        if self._log is not None:
            steps.append(self._log.close)
        self._runtime = self._proxy = self._moto = self._log = self._mirror = None
        self.service_metrics = None
        self._clients = {}
        try:
            _run_all(steps)
        finally:
            if self._holds_lock:
                self._holds_lock = False
                Sandbox._open_lock.release()

    def _start_service_metrics(self, moto: EmulatorProcess, proxy: FaultProxy) -> None:
        self.service_metrics = ServiceMetrics(
            lambda: self.metrics,
            bucket_name=self.bucket_name,
            bucket_filters=bucket_metrics_filters(
                self.template.properties(self.template.bucket_id)
            ),
            table_names=[self.table_name],
            queue_urls=[self.failure_queue_url] if self.failure_queue_url else [],
            clients=self.client,
        )
        moto.observers.append(self.service_metrics.observe_request)
        proxy.observers.append(self.service_metrics.observe_dynamodb)
        self.service_metrics.start()

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Stamp the service metrics with `clock()` (epoch seconds; a release drill's
        simulated clock). From now on each call of this sandbox's clients returns only once
        the emulator's requests so far were observed, so each is stamped with the clock as it
        was when the call was made, not after the caller moved it on."""
        if self.service_metrics is not None:
            self.service_metrics.use_clock(clock)
        self._observe_in_order = True

    def _settle_in_order(self, **_: Any) -> None:
        """botocore's after-call hook of this sandbox's clients (see use_clock)."""
        if self._observe_in_order and self._moto is not None:
            self._moto.settle()

    @property
    def emulator_pid(self) -> int | None:
        """The process id of the emulator (moto), which runs in a process of its own."""
        return self._moto.pid if self._moto is not None else None

    def _log_header(self) -> str:
        """The line that opens this run's part of the function log."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        return (
            f"\n===== sandbox run started {started} (pid {os.getpid()}), function "
            f"{self.function_name}, code {self.template.function.asset_dir} =====\n"
        )

    def _publish_metrics(self, record: InvocationRecord) -> None:
        """What Lambda and CloudWatch Logs publish for one invocation."""
        record_lambda_invocation(
            self.metrics,
            function_name=self.function_name,
            qualifier=record.qualifier,
            executed_version=record.executed_version,
            timestamp=record.started_at,
            duration_ms=record.duration_ms,
            error=not record.ok,
            emf_lines=record.emf_lines,
        )
        if self.service_metrics is not None:
            self.service_metrics.observe_invocation(self.function_name, record)

    # Deployment from the template
    def client(self, service: str) -> Any:
        """A boto3 client for the emulator (direct, never through the fault proxy)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=settings.SANDBOX_ACCESS_KEY,
                aws_secret_access_key=settings.SANDBOX_SECRET_KEY,
                config=Config(retries={"mode": "standard"}),
            )
            self._clients[service].meta.events.register("after-call", self._settle_in_order)
        return self._clients[service]

    def _deploy(self, suffix: str) -> tuple[FunctionIdentity, dict[str, str]]:
        template = self.template
        physical: dict[str, Physical] = {}
        for table_id in template.table_ids:
            physical[table_id] = self._create_table(table_id, suffix)
        function = template.function
        if function.failure_queue_id is not None:
            physical[function.failure_queue_id] = self._create_queue(
                physical_name(template.stack_name, function.failure_queue_id, suffix, 80),
                template.properties(function.failure_queue_id),
            )
            self.failure_queue_url = physical[function.failure_queue_id].ref
        physical[template.bucket_id] = self._create_bucket(suffix)
        self.bucket_name = physical[template.bucket_id].ref
        transport = self._create_queue(f"{settings.SANDBOX_TRANSPORT_QUEUE}-{suffix}", {})
        self.transport_queue_url = transport.ref
        self._notify_transport(transport.arn)
        self.function_name = physical_name(template.stack_name, function.logical_id, suffix, 64)
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"
        physical[function.logical_id] = Physical(self.function_name, arn)
        resolver = Resolver(physical, self.region, self.account, template.stack_name)
        self.resolver = resolver
        table_ref = function.environment.get(contract.TABLE_NAME_ENV)
        self.table_name = resolver.resolve(table_ref, contract.TABLE_NAME_ENV) if table_ref else ""
        environment = self._function_environment(resolver)
        identity = FunctionIdentity(
            name=self.function_name,
            version=FUNCTION_VERSION,
            invoked_arn=f"{arn}:{function.alias_name}",
            log_group=f"/aws/lambda/{self.function_name}",
        )
        return identity, environment

    def _create_table(self, table_id: str, suffix: str) -> Physical:
        props = self.template.properties(table_id)
        name = props.get("TableName")
        if not isinstance(name, str):
            name = physical_name(self.template.stack_name, table_id, suffix, 255)
        billing = props.get("BillingMode", "PROVISIONED")
        extra: dict[str, Any] = {"BillingMode": billing}
        if billing == "PROVISIONED":
            extra["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            **extra,
        )
        return Physical(name, f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}")

    def _create_queue(self, name: str, props: dict[str, Any]) -> Physical:
        attributes = {}
        if "MessageRetentionPeriod" in props:
            attributes["MessageRetentionPeriod"] = str(props["MessageRetentionPeriod"])
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return Physical(url, arn["Attributes"]["QueueArn"])

    def _create_bucket(self, suffix: str) -> Physical:
        props = self.template.properties(self.template.bucket_id)
        name = props.get("BucketName")
        if not isinstance(name, str):
            name = physical_name(self.template.stack_name, self.template.bucket_id, suffix, 63)
        s3 = self.client("s3")
        location = {}
        if self.region != "us-east-1":
            location["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(Bucket=name, **location)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return Physical(name, f"arn:aws:s3:::{name}")

    def _notify_transport(self, queue_arn: str) -> None:
        """The template's notification, with the transport queue in place of the function."""
        configurations = []
        for rule in self.template.notifications:
            configuration: dict[str, Any] = {"QueueArn": queue_arn, "Events": list(rule.events)}
            if rule.filter_rules:
                rules = [{"Name": name, "Value": value} for name, value in rule.filter_rules]
                configuration["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(configuration)
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.bucket_name,
            NotificationConfiguration={"QueueConfigurations": configurations},
        )

    def _function_environment(self, resolver: Resolver) -> dict[str, str]:
        """What Lambda sets, the template's variables resolved, and the emulator's settings."""
        function = self.template.function
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": FUNCTION_VERSION,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
        }
        for name, value in function.environment.items():
            environment[name] = resolver.resolve(value, f"environment variable {name}")
        environment.update(
            {
                "AWS_ACCESS_KEY_ID": settings.SANDBOX_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": settings.SANDBOX_SECRET_KEY,
                "AWS_SESSION_TOKEN": settings.SANDBOX_ACCESS_KEY,
                # There is no X-Ray daemon here; Lambda would provide one.
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        return environment

    # Using it
    def environment(self) -> dict[str, str]:
        """The variables that point the AWS CLI and boto3 at this sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": settings.SANDBOX_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": settings.SANDBOX_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
        }

    def set_faults(self, faults: Faults) -> None:
        """Change the injected faults while running (e.g. end an outage, then redrive)."""
        self.faults = faults
        self._running_runtime().set_faults(faults)
        if self._proxy is not None:
            self._proxy.set_faults(faults)

    def upload(self, key: str, body: bytes) -> None:
        """PutObject into the upload bucket (its event carries S3's sequencer and versionId)."""
        self.client("s3").put_object(Bucket=self.bucket_name, Key=key, Body=body)

    def busy(self) -> bool:
        """True while an event waits in the transport queue, in Lambda's queue or runs."""
        runtime = self._running_runtime()
        if runtime.busy():
            return True
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.transport_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if any(int(v) for v in attributes.values()):
            return True
        # An event may have moved from the queue into the runtime between the two looks.
        return runtime.busy()

    def wait_until_idle(self, timeout: float, progress: Progress | None = None) -> None:
        """Wait until every uploaded event was handled (recorded or sent to the failure queue)."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the sandbox was still busy after {timeout:.0f} s: {self.stats()} "
                    f"(transport queue {self.transport_queue_url}); the function's log is "
                    f"{self._function_log_path or 'not kept (pass function_log=...)'}"
                )
            if progress is not None:
                progress(self.progress_line())
            time.sleep(settings.SANDBOX_POLL_INTERVAL_SECONDS)
        # The store has the service metrics of every request so far, and the emulator's
        # CloudWatch every datapoint of what was handled.
        if self._moto is not None:
            self._moto.settle()
        if self._mirror is not None:
            self._mirror.drain(max(0.0, deadline - time.monotonic()))

    def progress_line(self) -> str:
        """The counters in one line: events, invocations, outcomes, and what faults did
        (each fault's count once it is configured, zero included, or once it happened)."""
        s = self._running_runtime().stats
        parts = [
            _count(s.events_received, "event"),
            _count(s.invocations, "invocation"),
            f"{s.recorded} recorded",
            _count(s.retries, "Lambda retry", "Lambda retries"),
            f"{s.sent_to_failure_queue} to the failure queue",
        ]
        if s.redriven:
            parts.append(f"{s.redriven} redriven")
        if s.duplicates_injected or self.faults.duplicate_rate:
            parts.append(_count(s.duplicates_injected, "duplicate") + " injected")
        if self._proxy is not None:
            injected = sum(self._proxy.injected.values())
            errors_on = self.faults.dynamodb_error_rate or self.faults.dynamodb_access_denied
            if injected or errors_on:
                parts.append(_count(injected, "DynamoDB error") + " injected")
            if self._proxy.sdk_retries or errors_on:
                parts.append(_count(self._proxy.sdk_retries, "SDK retry", "SDK retries"))
        return ", ".join(parts)

    def stats(self) -> dict[str, Any]:
        """What the runtime and the fault proxy did so far."""
        result: dict[str, Any] = asdict(self._running_runtime().stats)
        if self._proxy is not None:
            result["dynamodb_errors_injected"] = dict(self._proxy.injected)
            result["sdk_retries"] = self._proxy.sdk_retries
        return result

    def environment_pids(self) -> list[int]:
        """The process ids of the function's execution environments running now."""
        return self._running_runtime().environment_pids()

    def failure_queue_depth(self) -> int:
        """How many messages the failure queue holds (visible or not)."""
        if not self.failure_queue_url:
            return 0
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.failure_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def ledger(self) -> list[dict[str, Any]]:
        """Every ledger item as plain Python values, sorted by key."""
        pages = (
            self.client("dynamodb")
            .get_paginator("scan")
            .paginate(TableName=self.table_name, ConsistentRead=True)
        )
        return plain_items(item for page in pages for item in page["Items"])

    def failures(self) -> list[Any]:
        """The failure queue's messages, parsed if JSON (they stay in the queue)."""
        return peek_queue(self.client("sqs"), self.failure_queue_url)

    def redrive(self, *, bypass_faults: bool = False) -> RedriveResult:
        """Replay the failure queue's events through the handler (see LambdaRuntime.redrive).

        bypass_faults: the function talks to the emulator directly, not through the fault
        proxy, as after fixing the cause in AWS.
        """
        endpoint = self.endpoint_url if bypass_faults else None
        result = self._running_runtime().redrive(endpoint)
        if self._moto is not None:
            self._moto.settle()  # the failure queue's sends and deletes are in the store
        return result

    def _running_runtime(self) -> LambdaRuntime:
        if self._runtime is None:
            raise RuntimeError("the sandbox is not running: use `with Sandbox(...) as sb:`")
        return self._runtime


def peek_queue(sqs: Any, queue_url: str) -> list[Any]:
    """Every message body of a queue (parsed if JSON), leaving them in the queue."""
    seen: dict[str, Any] = {}
    handles = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen[message["MessageId"]] = _parsed(message["Body"])
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return list(seen.values())


def _parsed(body: str) -> Any:
    """A message body as JSON, or the text itself when it isn't JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return body


def plain_items(raw_items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """DynamoDB items as plain Python values (numbers as int or float), sorted by key."""
    deserializer = TypeDeserializer()
    items = [{k: _plain(deserializer.deserialize(v)) for k, v in raw.items()} for raw in raw_items]
    return sorted(items, key=lambda item: str(item.get(contract.PARTITION_KEY, "")))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _run_all(steps: list[Callable[[], None]]) -> None:
    """Run every shutdown step even if one fails; then raise the first failure."""
    first: BaseException | None = None
    for step in steps:
        try:
            step()
        except Exception as error:  # keep shutting down; raise the first failure after
            first = first or error
    if first is not None:
        raise first


def _count(number: int, singular: str, plural: str | None = None) -> str:
    """``1 event``, ``2 events``: a count with its noun in the right number."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
