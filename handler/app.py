"""Lambda entry point: S3 ObjectCreated notification -> ledger table.

Thin on purpose: validate the event, hand the records to :mod:`handler.ledger`,
which writes through :class:`handler.repository.LedgerRepository`; then count (one EMF
line, which also lists what was recorded), log what was skipped or failed, and fail the
invocation if any record could not be recorded.
"""

from __future__ import annotations

import gc

# Cold start: importing boto3 and Powertools and loading botocore's service model make a
# few hundred thousand long-lived objects, and the collections that this triggers scan
# them all and free nothing (~25 ms, about 1.2x the bare baseline's cold start; 1.1x
# without them, `make bench`). So the collector pauses until init is over, and what init
# built is then frozen (gc.freeze: later collections skip it), as CPython's gc docs advise
# for start-up. Hence the imports below come after this statement (E402 in pyproject).
gc.disable()

import os
from typing import Any, cast

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.functions import get_tracer_id
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

import contract
from handler import tracing
from handler.ledger import (
    BatchFailedError,
    BatchResult,
    NotAnS3NotificationError,
    event_records,
    is_s3_test_event,
    process_records,
)
from handler.repository import LedgerRepository


def _table_name() -> str:
    name = os.environ.get(contract.TABLE_NAME_ENV, "").strip()
    if not name:
        raise RuntimeError(
            f"{contract.TABLE_NAME_ENV} is not set: the Lambda function needs the ledger "
            f"table's name in its {contract.TABLE_NAME_ENV} environment variable (the "
            "ServiceStack sets it)"
        )
    return name


# Built once per execution environment (cold start) and reused by every invocation.
try:
    TABLE_NAME = _table_name()
    logger = Logger()
    metrics = Metrics(
        namespace=os.environ.get(contract.POWERTOOLS_METRICS_NAMESPACE_ENV)
        or contract.METRICS_NAMESPACE
    )
    # X-Ray: no library is patched. Tracer() alone would patch every library the X-Ray SDK
    # supports that is installed (importing each at cold start, ~60 ms), and even the
    # botocore patch alone costs ~140 us of CPU per put_item: a traced invocation gets one
    # DynamoDB subsegment for all its writes instead, and no handler subsegment around it
    # (handler/tracing.py says why).
    tracer = Tracer(auto_patch=False)
    # Powertools types its provider as its own BaseProvider; the X-Ray provider, the one
    # Tracer builds here, is the SDK's recorder (see tracing.Recorder).
    recorder = cast(tracing.Recorder, tracer.provider)
    # Stages that share an account keep their business metrics apart (the stack sets it).
    STAGE_NAME = os.environ.get(contract.STAGE_NAME_ENV, "").strip()
    if STAGE_NAME:
        metrics.set_default_dimensions(**{contract.METRICS_STAGE_DIMENSION: STAGE_NAME})
    # No endpoint_url: boto3 resolves it itself, so AWS_ENDPOINT_URL points it at an emulator.
    # botocore checks every request against the API's shapes before sending it (~0.1 ms of
    # CPU for our conditional put, `make bench`); DynamoDB validates it again on arrival,
    # and a request it refuses fails the record the same way (ClientError ->
    # LedgerWriteError), so the client-side pass is switched off.
    client = boto3.client("dynamodb", config=Config(parameter_validation=False))
    REGION: str = client.meta.region_name
    repository = LedgerRepository(client, TABLE_NAME)
finally:
    # Also when init fails (a missing TABLE_NAME): the process goes on collecting.
    gc.enable()
gc.freeze()


# What an invocation recorded goes on its EMF line, the one line every invocation that got
# records writes anyway (CloudWatch keeps the members no metric names as log fields,
# searchable in Logs Insights: "Embedded metric format specification", CloudWatch User
# Guide). A Powertools log line of its own cost ~0.08 ms of CPU and ~0.3 KB of ingestion
# per upload (`make bench`). The names are Powertools' own where it has one;
# runbooks/README.md queries them.
RECORDED_FIELD = "recorded"  # [{"object_key", "order"}], in the notification's order
REQUEST_ID_FIELD = "function_request_id"
TRACE_ID_FIELD = "xray_trace_id"  # only when the invocation is traced: else it leads nowhere


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record every object of the notification; raise if any record failed."""
    try:
        if not isinstance(event, dict):
            raise NotAnS3NotificationError(f"event is a {type(event).__name__}, not a JSON object")
        if is_s3_test_event(event):
            logger.info("Ignoring s3:TestEvent", extra={"bucket": event.get("Bucket")})
            return {"recorded": 0, "skipped": 0, "ignored": "s3:TestEvent"}
        records = event_records(event)
    except NotAnS3NotificationError as error:
        # `reason`, as on a failed record's line: the runbooks group ERROR lines by it.
        logger.exception("Event is not an S3 notification", extra={"reason": str(error)})
        raise
    # Most invocations are not traced (Lambda's default rule samples one request a second
    # and 5 % of the rest). For those the SDK would still build a dummy subsegment around
    # the writes, re-reading the trace header at each step: ~45 us of CPU for nothing.
    traced = tracing.is_traced(recorder, os.environ.get(tracing.TRACE_HEADER_ENV))
    result = _record(records, traced=traced)
    _report(result, context, traced=traced)
    if result.failures:
        raise BatchFailedError(result)
    return result.summary()


def _record(records: list[Any], *, traced: bool) -> BatchResult:
    """Process the records; traced, inside one X-Ray subsegment for all their writes."""
    if not traced:
        return process_records(records, repository)
    with recorder.in_subsegment(
        name=tracing.DYNAMODB_SUBSEGMENT, namespace=tracing.AWS_NAMESPACE
    ) as subsegment:
        result = process_records(records, repository)
        # The flag inject_lambda_context put on this invocation's log lines: one source.
        cold_start = bool(logger.get_current_keys().get("cold_start"))
        tracing.describe_invocation(subsegment, cold_start=cold_start, service=tracer.service)
        tracing.describe_writes(
            subsegment,
            records=len(records),
            result=result,
            table_name=TABLE_NAME,
            region=REGION,
            metadata_namespace=tracer.service or "default",
        )
    return result


def _report(result: BatchResult, context: LambdaContext, *, traced: bool) -> None:
    # The request (and trace) id on the EMF line, as Powertools' Logger puts them on its
    # own lines. Here, where metrics are always added: Powertools flushes an invocation
    # without any metric without clearing what it holds, which would carry into the next.
    metrics.add_metadata(key=REQUEST_ID_FIELD, value=context.aws_request_id)
    if traced:
        metrics.add_metadata(key=TRACE_ID_FIELD, value=get_tracer_id())
    if result.recorded:
        # One list per invocation, not a line per record: Logs Insights still finds every
        # key (`unnest` gives one row per object, runbooks/README.md); FilesRecorded on the
        # same line counts them.
        metrics.add_metadata(
            key=RECORDED_FIELD,
            value=[
                {"object_key": entry.filename, "order": entry.order} for entry in result.recorded
            ],
        )
    # Skips and failures are rare and keep a Powertools line per record.
    for kind, entries in (("duplicate", result.duplicates), ("stale", result.stale)):
        for entry in entries:
            logger.info(
                f"Skipped {kind} event",
                extra={"object_key": entry.filename, "order": entry.order},
            )
    for failure in result.failures:
        logger.error("Record could not be recorded", extra=tracing.failure_document(failure))
    counts = {
        contract.METRIC_FILES_RECORDED: len(result.recorded),
        contract.METRIC_RECORD_FAILURES: len(result.failures),
        contract.METRIC_DUPLICATES_SKIPPED: len(result.duplicates),
        contract.METRIC_STALE_EVENTS_SKIPPED: len(result.stale),
    }
    for name, count in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
