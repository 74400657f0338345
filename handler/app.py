"""Lambda entry point: S3 ObjectCreated notification -> ledger table.

Thin on purpose: validate the event, hand the records to :mod:`handler.ledger`,
which writes through :class:`handler.repository.LedgerRepository`; then log,
count and fail the invocation if any record could not be recorded.
"""

from __future__ import annotations

import gc

# Cold start: importing boto3 and Powertools and loading botocore's service model make a
# few hundred thousand long-lived objects, and the collections that this triggers scan
# them all and free nothing (~25 ms, about 1.2x the bare baseline's cold start; 1.06x
# without them, `make bench`). So the collector pauses until init is over, and what init
# built is then frozen (gc.freeze: later collections skip it), as CPython's gc docs advise
# for start-up. Hence the imports below come after this statement (E402 in pyproject).
gc.disable()

import os
from typing import Any, cast

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
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
    # botocore patch alone costs ~140 us of CPU per put_item: the write phase is traced as
    # one DynamoDB subsegment per invocation instead (handler/tracing.py says why).
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


@logger.inject_lambda_context
# The response (three counts) is not copied into the trace as metadata: the DynamoDB
# subsegment's annotations carry the same counts, searchable; copying and serialising it
# cost ~9 us of CPU per invocation (instruction counts). Exceptions are still captured.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record every object of the notification; raise if any record failed."""
    if not isinstance(event, dict):
        raise NotAnS3NotificationError(f"event is a {type(event).__name__}, not a JSON object")
    if is_s3_test_event(event):
        logger.info("Ignoring s3:TestEvent", extra={"bucket": event.get("Bucket")})
        return {"recorded": 0, "skipped": 0, "ignored": "s3:TestEvent"}
    try:
        records = event_records(event)
    except NotAnS3NotificationError:
        logger.exception("Event is not an S3 notification")
        raise
    result = _record(records)
    _report(result)
    if result.failures:
        raise BatchFailedError(result)
    return result.summary()


def _record(records: list[Any]) -> BatchResult:
    """Process the records inside one X-Ray subsegment for all their DynamoDB writes."""
    # Most invocations are not sampled (Lambda's default rule: one request a second and 5 %
    # of the rest). For those the SDK would still build a dummy subsegment around the
    # writes, re-reading the trace header at each step: ~45 us of CPU for nothing.
    if not recorder.is_sampled():
        return process_records(records, repository)
    with recorder.in_subsegment(
        name=tracing.DYNAMODB_SUBSEGMENT, namespace=tracing.AWS_NAMESPACE
    ) as subsegment:
        result = process_records(records, repository)
        tracing.describe_writes(
            subsegment,
            records=len(records),
            result=result,
            table_name=TABLE_NAME,
            region=REGION,
            metadata_namespace=tracer.service or "default",
        )
    return result


def _report(result: BatchResult) -> None:
    if result.recorded:
        # One line per invocation, not per record: each Powertools line costs ~0.05 ms of CPU
        # and ~0.5 KB of CloudWatch Logs ingestion (`make bench`), and recording is the hot
        # path. Logs Insights still finds every key: `jsonParse(@message)` then
        # `unnest ... into entry` gives one row per recorded object (runbooks/README.md).
        # Skips and failures are rare and keep a line per record.
        logger.info(
            "Recorded",
            extra={
                "recorded": [
                    {"object_key": entry.filename, "order": entry.order}
                    for entry in result.recorded
                ],
                "recorded_count": len(result.recorded),
            },
        )
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
