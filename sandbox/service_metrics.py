"""The metrics S3, SQS and DynamoDB publish about the service's resources, in the sandbox.

The Lambda runtime publishes `AWS/Lambda` and the handler's EMF metrics (sandbox.metrics);
the dashboard and the alarms also read what the other services publish. moto publishes
none of it, so the sandbox does, from what it sees pass:

- requests to the emulator (:meth:`ServiceMetrics.observe_request`, a WSGI middleware in
  front of moto): S3 `PutRequests` per request-metrics filter of the bucket (only filters
  the template configures, as S3 publishes request metrics only for those), SQS
  `NumberOfMessagesSent`, `SentMessageSize`, `NumberOfMessagesReceived` and
  `NumberOfMessagesDeleted` of the template's queues;
- the function's DynamoDB calls (:meth:`ServiceMetrics.observe_dynamodb`, from the fault
  proxy, so injected errors count as DynamoDB would count them): `SuccessfulRequestLatency`,
  `ConsumedRead/WriteCapacityUnits`, `ThrottledRequests`, `Read/WriteThrottleEvents`,
  `SystemErrors`, `ConditionalCheckFailedRequests` and the account's `UserErrors`;
- each finished invocation (:meth:`ServiceMetrics.observe_invocation`): Lambda's
  `ConcurrentExecutions`, as the runtime counted it when the invocation began;
- a sample each minute (:meth:`ServiceMetrics.sample`): SQS `ApproximateNumberOfMessages
  Visible` and `ApproximateAgeOfOldestMessage`, and S3's storage metrics `BucketSizeBytes`
  and `NumberOfObjects` (daily in AWS; sampled here so a short run shows them).

As in AWS, error and throttle metrics exist only when those events happen. Capacity units
follow DynamoDB's sizing rules (writes: 1 KB per unit; reads: 4 KB, half for eventually
consistent reads), computed from the item sizes seen. The oldest message's age is counted
from the sends and deletes seen, oldest first (SQS's own figure is also approximate).

Sources: https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote

from sandbox.metrics import LAMBDA_NAMESPACE, lambda_dimension_sets

if TYPE_CHECKING:  # the runtime imports the fault proxy, which imports this module
    from sandbox.runtime import InvocationRecord

S3 = "AWS/S3"
SQS = "AWS/SQS"
DYNAMODB = "AWS/DynamoDB"
SAMPLE_INTERVAL_SECONDS = 60.0
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
THROTTLED_TYPES = ("ProvisionedThroughputExceededException", "ThrottlingException")
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/")


class MetricSink(Protocol):
    """Where datapoints go: the sandbox's metric store (sandbox.metrics.MetricStore)."""

    def put(  # noqa: PLR0917 - PutMetricData's datum fields, as the store takes them
        self,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, str],
        value: float,
        timestamp: float,
        unit: str = "None",
    ) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class EmulatorRequest:
    """One request the emulator answered: what the WSGI middleware saw."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    status: int

    @cached_property  # asked up to three times per request (filter, dispatch): parsed once
    def service(self) -> str:
        """The signing name of the request's credential scope ("s3", "sqs"...)."""
        return signing_service(self.headers.get("authorization", ""))


def signing_service(authorization: str) -> str:
    """The signing name in a SigV4 Authorization header's credential scope ("s3", "sqs",
    "dynamodb"...), "" when there is none."""
    match = _CREDENTIAL_SCOPE.search(authorization)
    return match.group("service") if match else ""


@dataclass(frozen=True)
class DynamoDBCall:
    """One DynamoDB call of the function, as the fault proxy answered it."""

    operation: str  # "PutItem"
    request: Mapping[str, Any]
    status: int
    error_type: str  # the __type's last part, "" on success
    latency_ms: float
    response: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BucketMetricsFilter:
    """One request-metrics configuration of a bucket (S3's MetricsConfiguration)."""

    id: str
    prefix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix)


def bucket_metrics_filters(bucket_properties: Mapping[str, Any]) -> tuple[BucketMetricsFilter, ...]:
    """The bucket's request-metrics filters from its template properties (prefix filters)."""
    return tuple(
        BucketMetricsFilter(str(config["Id"]), str(config.get("Prefix", "")))
        for config in bucket_properties.get("MetricsConfigurations", [])
    )


class ServiceMetrics:
    """Publishes the S3, SQS and DynamoDB metrics of one deployed service into the store
    `store()` returns (the sandbox's current one), stamped with `clock()` (epoch seconds;
    a release drill sets its simulated clock with :meth:`use_clock`)."""

    def __init__(
        self,
        store: Callable[[], MetricSink],
        *,
        bucket_name: str,
        bucket_filters: Iterable[BucketMetricsFilter],
        table_names: Iterable[str],
        queue_urls: Iterable[str],
        clients: Callable[[str], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bucket = bucket_name
        self._filters = tuple(bucket_filters)
        self._tables = frozenset(table_names)
        self._queues = {url.rstrip("/").rsplit("/", 1)[-1]: url for url in queue_urls}
        self._clients = clients
        self._clock = clock
        self._lock = threading.Lock()
        self._sent_at: dict[str, list[float]] = {name: [] for name in self._queues}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Stamp datapoints with `clock()` from now on (a drill's simulated clock)."""
        self._clock = clock

    # The sampler
    def start(self, interval: float = SAMPLE_INTERVAL_SECONDS) -> None:
        """Sample now and then every `interval` seconds until stop()."""
        self.sample()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="sandbox-service-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.sample()

    def sample(self) -> None:
        """Publish the sampled metrics: queue depth and age, bucket size and object count."""
        now = self._clock()
        for name, url in self._queues.items():
            attributes = self._clients("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            visible = float(attributes["ApproximateNumberOfMessages"])
            dimensions = {"QueueName": name}
            self._put(SQS, "ApproximateNumberOfMessagesVisible", dimensions, visible, "Count")
            with self._lock:
                oldest = min(self._sent_at[name], default=None)
            age = 0.0 if oldest is None else max(0.0, now - oldest)
            self._put(SQS, "ApproximateAgeOfOldestMessage", dimensions, age, "Seconds")
        if self._bucket:
            self._sample_bucket()

    def _sample_bucket(self) -> None:
        s3 = self._clients("s3")
        size = count = 0
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket):
            for version in page.get("Versions", []):
                size += int(version.get("Size", 0))
                count += 1
        bucket = {"BucketName": self._bucket}
        standard = {**bucket, "StorageType": "StandardStorage"}
        self._put(S3, "BucketSizeBytes", standard, float(size), "Bytes")
        everything = {**bucket, "StorageType": "AllStorageTypes"}
        self._put(S3, "NumberOfObjects", everything, float(count), "Count")

    # Requests to the emulator
    def observe_request(self, request: EmulatorRequest) -> None:
        """Count what S3 and SQS would for one request the emulator answered."""
        if not may_count(request):  # the same filter the emulator's process applies
            return
        if request.service == "s3":
            self._observe_s3(request)
        else:
            self._observe_sqs(request)

    def _observe_s3(self, request: EmulatorRequest) -> None:
        bucket, _, key = unquote(request.path).lstrip("/").partition("/")
        if bucket != self._bucket or not key:
            return
        for metrics_filter in self._filters:
            if metrics_filter.matches(key):
                dimensions = {"BucketName": bucket, "FilterId": metrics_filter.id}
                self._put(S3, "PutRequests", dimensions, 1.0, "Count")

    def _observe_sqs(self, request: EmulatorRequest) -> None:
        action, parameters = _sqs_action(request)
        name = str(parameters.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        if name not in self._queues:
            return
        dimensions = {"QueueName": name}
        if action in SQS_SEND_ACTIONS:
            bodies = (
                [parameters.get("MessageBody", "")]
                if action == "SendMessage"
                else [entry.get("MessageBody", "") for entry in parameters.get("Entries", [])]
            )
            with self._lock:
                self._sent_at[name] += [self._clock()] * len(bodies)
            self._put(SQS, "NumberOfMessagesSent", dimensions, float(len(bodies)), "Count")
            for body in bodies:
                size = float(len(str(body).encode()))
                self._put(SQS, "SentMessageSize", dimensions, size, "Bytes")
        elif action in SQS_DELETE_ACTIONS:
            count = 1 if action == "DeleteMessage" else len(parameters.get("Entries", []))
            with self._lock:
                del self._sent_at[name][:count]  # oldest first: see the module's note
            self._put(SQS, "NumberOfMessagesDeleted", dimensions, float(count), "Count")

    # Lambda's concurrency
    def observe_invocation(self, function_name: str, record: InvocationRecord) -> None:
        """Publish Lambda's ConcurrentExecutions: the invocations running when this one began
        (the runtime counts them), per function, per alias/version and account-wide."""
        for dimensions in lambda_dimension_sets(function_name, record.qualifier, None):
            self._put(
                LAMBDA_NAMESPACE,
                "ConcurrentExecutions",
                dimensions,
                float(record.concurrent_executions),
                "Count",
                timestamp=record.started_at,
            )

    # DynamoDB calls of the function
    def observe_dynamodb(self, call: DynamoDBCall) -> None:
        """Publish what DynamoDB would for one call (see the module's list)."""
        table = str(call.request.get("TableName", ""))
        if table not in self._tables:
            return
        by_table = {"TableName": table}
        by_operation = {"TableName": table, "Operation": call.operation}
        write = call.operation in DYNAMODB_WRITES
        if call.error_type in THROTTLED_TYPES:
            self._put(DYNAMODB, "ThrottledRequests", by_operation, 1.0, "Count")
            events = "WriteThrottleEvents" if write else "ReadThrottleEvents"
            self._put(DYNAMODB, events, by_table, 1.0, "Count")
        elif call.status >= 500:
            self._put(DYNAMODB, "SystemErrors", by_operation, 1.0, "Count")
        elif call.error_type == CONDITIONAL_CHECK_FAILED:
            # A failed condition still consumes the write (DynamoDB's rule).
            self._put(DYNAMODB, "ConditionalCheckFailedRequests", by_table, 1.0, "Count")
            self._consumed(call, by_table)
        elif call.status >= 400:
            self._put(DYNAMODB, "UserErrors", {}, 1.0, "Count")
        else:
            self._put(
                DYNAMODB,
                "SuccessfulRequestLatency",
                by_operation,
                call.latency_ms,
                "Milliseconds",
            )
            self._consumed(call, by_table)

    def _consumed(self, call: DynamoDBCall, dimensions: Mapping[str, str]) -> None:
        if call.operation in DYNAMODB_WRITES:
            item = call.request.get("Item") or call.request.get("Key") or {}
            units = float(max(1, math.ceil(item_size(item) / WRITE_UNIT_BYTES)))
            self._put(DYNAMODB, "ConsumedWriteCapacityUnits", dimensions, units, "Count")
            return
        items = call.response.get("Items") or [call.response.get("Item") or {}]
        size = sum(item_size(item) for item in items)
        units = float(max(1, math.ceil(size / READ_UNIT_BYTES)))
        if not call.request.get("ConsistentRead"):
            units /= 2
        self._put(DYNAMODB, "ConsumedReadCapacityUnits", dimensions, units, "Count")

    def _put(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        value: float,
        unit: str,
        *,
        timestamp: float | None = None,
    ) -> None:
        when = self._clock() if timestamp is None else timestamp
        store = self._store()
        store.put(namespace, name, dimensions, value, when, unit)
        store.flush()  # to moto's CloudWatch too, as the Lambda metrics go


SQS_SEND_ACTIONS = ("SendMessage", "SendMessageBatch")
SQS_DELETE_ACTIONS = ("DeleteMessage", "DeleteMessageBatch")
SQS_COUNTED_ACTIONS = frozenset(SQS_SEND_ACTIONS + SQS_DELETE_ACTIONS)


def may_count(request: EmulatorRequest) -> bool:
    """False for a request :meth:`ServiceMetrics.observe_request` surely ignores, from its
    status, service, method and target alone: the emulator's process sends the sandbox
    only the others, and observe_request starts with the same test."""
    if request.status >= 300:
        return False
    service = request.service
    if service == "s3":  # an object's PUT: /bucket/key
        return request.method == "PUT" and "/" in request.path.lstrip("/")
    if service != "sqs":
        return False
    target = request.headers.get("x-amz-target", "")
    # The query protocol names its action in the body: left to observe_request.
    return not target or target.removeprefix("AmazonSQS.") in SQS_COUNTED_ACTIONS


def _sqs_action(request: EmulatorRequest) -> tuple[str, dict[str, Any]]:
    """(action, parameters) of an SQS request in the JSON or the query protocol."""
    target = request.headers.get("x-amz-target", "")
    if target.startswith("AmazonSQS."):
        try:
            parameters = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return "", {}
        return target.split(".", 1)[1], parameters if isinstance(parameters, dict) else {}
    form = parse_qs(request.body.decode(errors="replace") or request.query)
    flat: dict[str, Any] = {k: v[0] for k, v in form.items()}
    entries = sorted(k for k in flat if re.fullmatch(r"\w+BatchRequestEntry\.\d+\.Id", k))
    flat["Entries"] = [
        {"MessageBody": flat.get(k.replace(".Id", ".MessageBody"), "")} for k in entries
    ]
    return str(flat.get("Action", "")), flat


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (typed JSON form)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    return _SIZES.get(kind, _set_size)(content)


def _set_size(content: Any) -> int:  # SS, NS, BS
    return sum(len(str(v).encode()) for v in content)


_SIZES: dict[str, Callable[[Any], int]] = {
    "S": lambda content: len(str(content).encode()),
    "N": lambda content: len(str(content).lstrip("-").replace(".", "")) // 2 + 1,
    "B": lambda content: len(str(content)) * 3 // 4,  # base64 on the wire
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "M": lambda content: 3 + item_size(content),
    "L": lambda content: 3 + sum(1 + _value_size(v) for v in content),
}
