"""The metric contract, end to end: what the handler and AWS publish is what the dashboard and
the alarms read. After a run that makes every event happen, every metric a widget or an
alarm references has data; a one-sided rename (template or handler) leaves one without."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

import contract
from sandbox import Faults, Sandbox
from sandbox.console import ConsoleSources, write_snapshot
from sandbox.console.dashboard import Dashboard, find_dashboard_template, load_dashboard
from sandbox.console.deployed import deployed_attributes, pseudo_parameters
from sandbox.console.panels import AlarmBoard
from sandbox.console.references import (
    MetricReference,
    alarm_references,
    dashboard_references,
    missing_data,
)
from sandbox.metrics import MetricStore, record_lambda_throttle
from sandbox.service_metrics import DYNAMODB, DynamoDBCall

pytestmark = pytest.mark.e2e

RETRY_DELAY_SECONDS = 0.05
# DynamoDB's data-plane operations (DynamoDB API reference). The function calls PutItem
# only; DynamoDB publishes per-operation metrics for the others only when they are called.
DYNAMODB_OPERATIONS = (
    "GetItem",
    "BatchGetItem",
    "Scan",
    "Query",
    "GetRecords",
    "PutItem",
    "DeleteItem",
    "UpdateItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
)


@pytest.fixture(scope="module")
def run(cdk_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox after a run that makes every event the metrics count happen: uploads,
    DynamoDB throttling and 500s, events failing into the failure queue, a redrive."""
    log = tmp_path_factory.mktemp("contract") / "function.log"
    faults = Faults(dynamodb_error_rate=0.4, seed=7)
    with Sandbox(cdk_out, faults, RETRY_DELAY_SECONDS, function_log=log) as sb:
        for n in range(10):
            sb.upload(f"contract/file {n}.txt", b"x" * n)
        sb.wait_until_idle(timeout=120)
        sb.set_faults(Faults(dynamodb_access_denied=True))
        for n in range(2):
            sb.upload(f"contract/denied {n}.txt", b"denied")
        sb.wait_until_idle(timeout=120)
        sb.set_faults(Faults())
        assert sb.redrive().redriven == 2
        _read_the_ledger_as_the_function_would(sb)
        _events_the_sandbox_cannot_cause(sb)
        assert sb.service_metrics is not None
        sb.service_metrics.sample()
        yield sb


def _read_the_ledger_as_the_function_would(sb: Sandbox) -> None:
    """A consistent GetItem through the same path as the function's calls (the fault proxy),
    so DynamoDB's read metrics see a read."""
    environment = sb.function_environment
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=sb.region,
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
    )
    item = dynamodb.get_item(
        TableName=sb.table_name, Key={"filename": {"S": "contract/file 1.txt"}}, ConsistentRead=True
    )
    assert "Item" in item


def _events_the_sandbox_cannot_cause(sb: Sandbox) -> None:
    """What only happens in AWS, published by the same code that publishes it when it does:
    a throttled invocation of the alias (the local runtime queues instead of throttling)
    and failing calls of the DynamoDB operations the function never makes."""
    record_lambda_throttle(
        sb.metrics, function_name=sb.function_name, qualifier="live", timestamp=time.time()
    )
    assert sb.service_metrics is not None
    for operation in DYNAMODB_OPERATIONS:
        for status, error in ((500, "InternalServerError"), (400, "ThrottlingException")):
            sb.service_metrics.observe_dynamodb(
                DynamoDBCall(operation, {"TableName": sb.table_name}, status, error, 1.0)
            )


def _dashboard(sb: Sandbox, cdk_out: Path) -> Dashboard:
    return load_dashboard(
        cdk_out, sb.template.stack_name, deployed_attributes(sb), pseudo_parameters(sb)
    )


def _alarm_references(sb: Sandbox, resources: dict[str, Any]) -> list[MetricReference]:
    return alarm_references(resources, deployed_attributes(sb), pseudo_parameters(sb))


def _sum(sb: Sandbox, namespace: str, name: str, dimensions: dict[str, str]) -> float:
    points = sb.metrics.statistic(namespace, name, dimensions, "Sum", 3600, 0, time.time() + 60)
    return sum(value for _, value in points)


def test_every_metric_a_widget_reads_has_data(run: Sandbox, cdk_out: Path) -> None:
    references = dashboard_references(_dashboard(run, cdk_out))
    assert len(references) > 20  # the body's graphs, not an empty list
    assert [str(r) for r in missing_data(references, run.metrics)] == []


def test_every_metric_an_alarm_reads_has_data(run: Sandbox) -> None:
    references = _alarm_references(run, run.template.resources)
    assert {r.where for r in references} >= {
        "alarm upload-ledger-dev-canary-error-rate",
        "alarm upload-ledger-dev-failure-queue-not-empty",
        "alarm upload-ledger-dev-table-system-errors",
    }
    assert [str(r) for r in missing_data(references, run.metrics)] == []


def _renamed_cdk_out(cdk_out: Path, target: Path, old: str, new: str) -> Path:
    """A copy of cdk.out whose dashboard body says `new` where it said `old`."""
    shutil.copytree(cdk_out, target, ignore=shutil.ignore_patterns("asset.*"))
    replaced = False
    for template_path in target.rglob("*.template.json"):
        template = json.loads(template_path.read_text(encoding="utf-8"))
        for resource in template.get("Resources", {}).values():
            if resource.get("Type") == "AWS::CloudWatch::Dashboard":
                parts = resource["Properties"]["DashboardBody"]["Fn::Join"][1]
                renamed = [p.replace(old, new) if isinstance(p, str) else p for p in parts]
                replaced = replaced or renamed != parts
                resource["Properties"]["DashboardBody"]["Fn::Join"][1] = renamed
                template_path.write_text(json.dumps(template), encoding="utf-8")
    assert replaced, f"{old!r} is in no dashboard body"
    return target


@pytest.mark.parametrize(
    "rename",
    [
        # (in the body, renamed to, what each reference without data then says)
        ('"FilesRecorded"', '"FilesStored"', " FilesStored {"),
        ('["UploadLedger","FilesRecorded"', '["Upload-Ledger","FilesRecorded"', "Upload-Ledger "),
        ('"stage","dev"', '"Stage","dev"', "Stage=dev"),
        ('"FilterId","EntireBucket"', '"FilterId","AllObjects"', "FilterId=AllObjects"),
    ],
)
def test_a_dashboard_side_rename_leaves_a_widget_without_data(
    run: Sandbox, cdk_out: Path, tmp_path: Path, rename: tuple[str, str, str]
) -> None:
    old, new, says = rename
    renamed = _renamed_cdk_out(cdk_out, tmp_path / "cdk.out", old, new)
    missing = missing_data(dashboard_references(_dashboard(run, renamed)), run.metrics)
    assert missing, f"renaming {old} to {new} in the dashboard alone went unnoticed"
    assert all(says in str(reference) for reference in missing), missing


def test_an_alarm_side_rename_leaves_the_alarm_without_data(run: Sandbox) -> None:
    resources = copy.deepcopy(run.template.resources)
    alarm = next(r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm")
    properties = alarm["Properties"]
    metric = (
        properties
        if "MetricName" in properties
        else properties["Metrics"][1]["MetricStat"]["Metric"]
    )
    metric["MetricName"] += "Renamed"
    missing = missing_data(_alarm_references(run, resources), run.metrics)
    assert [m.metric_name for m in missing] == [metric["MetricName"]]


def test_the_business_metrics_read_are_the_contract_modules(run: Sandbox, cdk_out: Path) -> None:
    business = [
        reference
        for reference in dashboard_references(_dashboard(run, cdk_out))
        + _alarm_references(run, run.template.resources)
        if reference.namespace == contract.METRICS_NAMESPACE
    ]
    assert business  # the business-flow row reads the handler's metrics
    names = {
        contract.METRIC_FILES_RECORDED,
        contract.METRIC_RECORD_FAILURES,
        contract.METRIC_DUPLICATES_SKIPPED,
        contract.METRIC_STALE_EVENTS_SKIPPED,
    }
    dimensions = {contract.METRICS_SERVICE_DIMENSION, contract.METRICS_STAGE_DIMENSION}
    for reference in business:
        assert reference.metric_name in names, str(reference)
        assert {name for name, _ in reference.dimensions} == dimensions, str(reference)


def test_a_handler_side_rename_leaves_the_business_flow_without_data(
    run: Sandbox, cdk_out: Path
) -> None:
    # The store as it would be had the handler renamed FilesRecorded (and nothing else).
    renamed = MetricStore()
    for namespace, name, dimensions in run.metrics.metrics():
        published = "FilesStored" if name == "FilesRecorded" else name
        renamed.put(namespace, published, dimensions, 1.0, time.time())
    missing = missing_data(dashboard_references(_dashboard(run, cdk_out)), renamed)
    assert [(m.where, m.metric_name) for m in missing] == [
        ("widget 'Uploads vs files recorded'", "FilesRecorded")
    ]


def test_the_aws_metrics_count_what_happened(run: Sandbox) -> None:
    bucket = {"BucketName": run.bucket_name, "FilterId": "EntireBucket"}
    assert _sum(run, "AWS/S3", "PutRequests", bucket) == 12
    queue = {"QueueName": run.failure_queue_url.rsplit("/", 1)[-1]}
    assert _sum(run, "AWS/SQS", "NumberOfMessagesSent", queue) == 2
    assert _sum(run, "AWS/SQS", "NumberOfMessagesDeleted", queue) == 2
    table = {"TableName": run.table_name}
    put_item = {**table, "Operation": "PutItem"}
    # The injected errors, plus the one of each that stands for AWS (see above).
    assert _sum(run, DYNAMODB, "SystemErrors", put_item) >= 2
    assert _sum(run, DYNAMODB, "ThrottledRequests", put_item) >= 2
    assert _sum(run, DYNAMODB, "ConsumedWriteCapacityUnits", table) >= 12


def test_the_snapshot_draws_every_widget_offline(
    run: Sandbox, cdk_out: Path, tmp_path: Path
) -> None:
    path = tmp_path / "dashboard.html"
    sources = ConsoleSources.of(run, cdk_out, tmp_path / "outbox")
    assert write_snapshot(sources, path) == []
    page = path.read_text(encoding="utf-8")
    titles = [w.title for w in sources.dashboard.widgets if w.title]
    assert titles
    assert all(f'data-title="{title}"' in page for title in titles)
    assert "<script src=" not in page  # Plotly is inlined: no CDN, no network
    assert "Plotly" in page
    _, resource = find_dashboard_template(cdk_out, run.template.stack_name)
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"


PAGE_PERIOD = 300  # the paging alarms' period (service/alarms.py, PAGE)


def _just_after_the_period_of_the_last(run: Sandbox, namespace: str, name: str) -> float:
    """A clock just after the paging period that holds the run's last nonzero `name`.

    Evaluated then, that period is the newest datapoint in the alarm's range, as in
    CloudWatch. "Ten minutes after the run" was not enough: a run that crossed a 5-minute
    boundary had a newer period of successful invocations (errors 0), and the alarm was
    rightly OK there (a fresh clone's .ci/run failed so at 19:00).
    """
    stamps = [
        stamp
        for namespace_, name_, dimensions in run.metrics.metrics()
        if (namespace_, name_) == (namespace, name)
        for stamp, value in run.metrics.statistic(
            namespace, name, dimensions, "Sum", PAGE_PERIOD, 0, time.time() + 60
        )
        if value > 0
    ]
    return max(stamps) + PAGE_PERIOD + 1


def _alarms_at(run: Sandbox, cdk_out: Path, outbox: Path, clock: float, **options: Any) -> Any:
    sources = ConsoleSources.of(run, cdk_out, outbox, clock=lambda: clock, **options)
    return {alarm.name: alarm for alarm in sources.alarms()}


def test_the_console_evaluates_the_template_alarms_over_the_run(
    run: Sandbox, cdk_out: Path, tmp_path: Path
) -> None:
    after_errors = _just_after_the_period_of_the_last(run, "AWS/Lambda", "Errors")
    alarms = _alarms_at(run, cdk_out, tmp_path / "outbox", after_errors)
    stage = next(iter(alarms)).split("-")[2]
    assert len(alarms) == sum(
        r["Type"] == "AWS::CloudWatch::Alarm" for r in run.template.resources.values()
    )
    errors = alarms[f"upload-ledger-{stage}-function-errors"]
    assert errors.state == "ALARM"  # the denied uploads failed their invocations
    assert "Threshold Crossed" in errors.reason
    assert errors.runbook_url.endswith("/runbooks/function-errors.md")
    after_system_errors = _just_after_the_period_of_the_last(run, DYNAMODB, "SystemErrors")
    alarms = _alarms_at(run, cdk_out, tmp_path / "outbox", after_system_errors)
    assert alarms[f"upload-ledger-{stage}-table-system-errors"].state == "ALARM"


def test_an_alarm_the_evaluator_cannot_read_is_listed_with_why(run: Sandbox) -> None:
    resources = copy.deepcopy(run.template.resources)
    logical_id, alarm = next(
        (lid, r) for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    )
    alarm["Properties"]["ComparisonOperator"] = "LessThanLowerOrGreaterThanUpperThreshold"
    board = AlarmBoard(
        dataclasses.replace(run.template, resources=resources),
        deployed_attributes(run),
        pseudo_parameters(run),
        run.metrics,
    )
    (status,) = [s for s in board.statuses() if s.name == alarm["Properties"]["AlarmName"]]
    assert status.state == "INSUFFICIENT_DATA"
    assert status.reason.startswith("Not evaluated: ")
    assert "LessThanLowerOrGreaterThanUpperThreshold" in status.reason
    assert logical_id in resources


@pytest.mark.parametrize("initial", ["OK", "INSUFFICIENT_DATA"])
def test_the_console_reason_names_the_transition_from_the_state_alarms_start_in(
    run: Sandbox, cdk_out: Path, tmp_path: Path, initial: str
) -> None:
    # A drill's snapshot starts its alarms in OK as the drill does (its e-mails say
    # OK -> ALARM); a freshly deployed sandbox's alarms are new: INSUFFICIENT_DATA.
    later = _just_after_the_period_of_the_last(run, "AWS/Lambda", "Errors")
    sources = ConsoleSources.of(
        run, cdk_out, tmp_path / "outbox", clock=lambda: later, initial_alarm_state=initial
    )
    first = {alarm.name: alarm for alarm in sources.alarms()}
    errors = next(a for name, a in first.items() if name.endswith("-function-errors"))
    assert errors.state == "ALARM"
    assert errors.reason.endswith(f"for {initial} -> ALARM transition).")
    again = {alarm.name: alarm for alarm in sources.alarms()}  # no change: the reason stays
    assert again[errors.name].reason == errors.reason
