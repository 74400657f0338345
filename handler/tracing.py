"""X-Ray for the write phase: one subsegment per invocation for all its DynamoDB writes.

Why not the X-Ray SDK's botocore patch: it opens, describes and sends a subsegment for
every ``put_item``, about 140 us of CPU per record even when the invocation is not sampled
(`make bench`), the largest share of the handler's cost over a bare ``put_item``. So
nothing is patched, and the handler wraps its write phase in one subsegment described the
way the SDK describes a DynamoDB call (namespace ``aws``, name ``dynamodb``, the service's
endpoint prefix; ``aws.operation``, ``region``, ``table_name``): X-Ray still draws
DynamoDB in the service map and in each trace, with the error (4xx) or fault (5xx) flag
from DynamoDB's answers (DynamoDB throttles with a 400, so a throttled write is an error
whose cause names the throttling exception; X-Ray's throttle flag is for a 429). S3 sends
one record per notification, so in production the trace keeps its shape: one DynamoDB
subsegment per invocation. What the patch gave and this does not: a separate timing per
call in a many-record event (the annotations count them), and the trace header on the
request, which DynamoDB does not continue (X-Ray infers its node from the caller's
subsegment). Segment document fields: AWS X-Ray Developer Guide, "AWS X-Ray segment
documents" (`aws`, `namespace`, `cause`).

Why not Powertools' ``capture_lambda_handler`` around it: its ``## lambda_handler``
subsegment times what Lambda's own function segment already times (Lambda emits it, with
its ``Invocation`` subsegment and the error flag of a failed invocation, for every traced
invocation), and it cost ~0.1 ms of CPU per traced invocation, and ~45 us per untraced
one for a dummy subsegment nobody sends (`make bench`). Its ``ColdStart`` and ``Service``
annotations move to the DynamoDB subsegment (:func:`describe_invocation`); a failed
invocation's exception is in its ERROR log line, whose ``xray_trace_id`` leads here when
the invocation was traced, and
each write DynamoDB refused is a ``cause`` of this subsegment.
"""

from __future__ import annotations

import traceback
from contextlib import AbstractContextManager
from typing import Any, Protocol

from handler.ledger import BatchResult, LedgerWriteError, RecordFailure

DYNAMODB_SUBSEGMENT = "dynamodb"  # the SDK names AWS calls by the service's endpoint prefix
AWS_NAMESPACE = "aws"  # X-Ray's namespace for AWS SDK calls: the service map draws an AWS node
OPERATION = "PutItem"
FAILURES_METADATA_KEY = "failures"
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"  # Lambda sets it for each invocation
SAMPLED = "Sampled=1"  # the trace header's sampling decision for a traced request
# Powertools' names (Tracer.capture_lambda_handler), kept for existing filter expressions.
COLD_START_ANNOTATION = "ColdStart"
SERVICE_ANNOTATION = "Service"


class Recorder(Protocol):
    """What the handler uses of the X-Ray SDK's recorder, Powertools' X-Ray provider."""

    def is_sampled(self) -> bool:
        """Whether the current invocation's trace is sampled (False when tracing is off)."""

    def in_subsegment(self, name: str, *, namespace: str) -> AbstractContextManager[Subsegment]:
        """A subsegment of the current entity, ended (and sent) on exit."""


class Subsegment(Protocol):
    """What the handler uses of an X-Ray SDK subsegment (``aws_xray_sdk``'s ``Subsegment``).

    Powertools types its provider's subsegments as its own ``BaseSegment``, which lacks
    ``set_aws`` and ``put_http_meta``; the X-Ray provider, the one Tracer uses, yields the
    SDK's class, which has them.
    """

    def set_aws(self, aws_meta: dict[str, Any]) -> None:
        """The segment document's ``aws`` object."""

    def put_http_meta(self, key: str, value: Any) -> None:
        """``status`` sets the error (4xx), throttle (429) or fault (5xx) flag."""

    def put_annotation(self, key: str, value: Any) -> None:
        """An indexed key (searchable with filter expressions)."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """A value shown with the trace, not indexed."""

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        """A ``cause`` exception; sets the fault flag."""


def is_traced(recorder: Recorder, trace_header: str | None) -> bool:
    """Whether the current invocation is traced (sampled), as the X-Ray SDK decides it.

    ``trace_header`` is Lambda's ``_X_AMZN_TRACE_ID`` for this invocation (None without
    one). In Lambda the SDK samples exactly the invocations whose header says
    ``Sampled=1`` (it never samples on its own there), so a header that does not say so
    is answered here; one that does is left to the recorder, which also knows whether
    tracing is switched off. Reading the header first spares an untraced invocation (most
    of them at volume) the recorder's work for the same answer: parsing the header and
    building a facade segment, ~8 us of CPU (`make bench`). Header format: AWS X-Ray
    Developer Guide, "Tracing header".
    """
    if trace_header is None or SAMPLED not in trace_header:
        return False
    return recorder.is_sampled()


def describe_invocation(subsegment: Subsegment, *, cold_start: bool, service: str | None) -> None:
    """Annotations ``ColdStart`` and ``Service``, the names Powertools' handler subsegment
    gives them, so filter expressions such as ``annotation.ColdStart = true`` still work."""
    subsegment.put_annotation(COLD_START_ANNOTATION, cold_start)
    if service:
        subsegment.put_annotation(SERVICE_ANNOTATION, service)


def describe_writes(
    subsegment: Subsegment,
    *,
    records: int,
    result: BatchResult,
    table_name: str,
    region: str,
    metadata_namespace: str,
) -> None:
    """Describe one invocation's writes on its DynamoDB subsegment.

    Annotations ``records`` (in the notification), ``recorded``, ``skipped``, ``failed``;
    metadata ``failures`` (index, key, reason, DynamoDB's request id) when any failed, so
    the ``xray_trace_id`` of an error log line leads to them. A write DynamoDB refused or
    never answered is also recorded as the SDK records a failed call: its HTTP status
    sets the flags and it is a remote exception of the subsegment. A record that was
    invalid never reached DynamoDB: it is listed and counted, not flagged on DynamoDB.
    """
    subsegment.set_aws({"operation": OPERATION, "region": region, "table_name": table_name})
    counts = {
        "records": records,
        "recorded": len(result.recorded),
        "skipped": len(result.duplicates) + len(result.stale),
        "failed": len(result.failures),
    }
    for key, value in counts.items():
        subsegment.put_annotation(key, value)
    if not result.failures:
        return
    subsegment.put_metadata(
        FAILURES_METADATA_KEY,
        [failure_document(failure) for failure in result.failures],
        metadata_namespace,
    )
    for failure in result.failures:
        if isinstance(failure.error, LedgerWriteError):
            subsegment.put_http_meta("status", failure.error.status_code)
            stack = traceback.extract_tb(failure.error.__traceback__)
            subsegment.add_exception(failure.error, stack, remote=True)


def failure_document(failure: RecordFailure) -> dict[str, Any]:
    """One failed record as the trace and the error log line show it."""
    document: dict[str, Any] = {
        "record_index": failure.index,
        "key": failure.key,
        "reason": failure.reason,
    }
    if isinstance(failure.error, LedgerWriteError) and failure.error.request_id:
        document["dynamodb_request_id"] = failure.error.request_id
    return document
