"""The MonitoringStack's dashboard: what operators see, read from the synthesized body."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Template

import contract
from config.settings import AppConfig, StageConfig
from service.alarms import CATALOGUE
from service.settings import S3_REQUEST_METRICS_ID
from service.stack import ServiceStack
from stage import LedgerStage
from tests.infra.conftest import build_stage

EXTRA_ALARM_IDS = ("ExtraAlarmOne", "ExtraAlarmTwo")


class StageWithExtraAlarms(LedgerStage):
    """The real stage, with two more alarms registered while the service stack is built."""

    def _build_service(self, stage: StageConfig, app_config: AppConfig) -> ServiceStack:
        service = super()._build_service(stage, app_config)
        for alarm_id in EXTRA_ALARM_IDS:
            service.alarms.append(
                cloudwatch.Alarm(
                    service,
                    alarm_id,
                    metric=service.failure_queue.metric_approximate_number_of_messages_visible(),
                    threshold=1,
                    evaluation_periods=1,
                )
            )
        return service


class StageWithoutAlarms(LedgerStage):
    """The real stage with an empty alarm registry: the state before any alarm exists."""

    def _build_service(self, stage: StageConfig, app_config: AppConfig) -> ServiceStack:
        service = super()._build_service(stage, app_config)
        service.alarms.clear()
        return service


def _render(value: Any, outputs: dict[str, Any]) -> str:
    """An intrinsic as the logical id (or literal) it stands for, following cross-stack
    references through the service stack's outputs."""
    if isinstance(value, str):
        return value
    ((function, argument),) = value.items()
    if function == "Fn::Join":
        return str(argument[0]).join(_render(part, outputs) for part in argument[1])
    return _render(_referenced(function, argument, outputs), outputs)


def _referenced(function: str, argument: Any, outputs: dict[str, Any]) -> Any:
    """What one intrinsic points at: a logical id, or the value of the output it reads."""
    if function in ("Ref", "Fn::GetAtt"):
        return argument if function == "Ref" else argument[0]
    if function == "Fn::GetStackOutput":
        return outputs[argument["OutputName"]]["Value"]
    if function == "Fn::ImportValue":
        (output,) = [o for o in outputs.values() if o.get("Export", {}).get("Name") == argument]
        return output["Value"]
    if function in ("Fn::Select", "Fn::Split"):
        # The alias's console link picks its name out of its ARN: the alias is what counts.
        return argument[1]
    raise AssertionError(f"unexpected intrinsic in the dashboard body: {function}")


def _dashboards(monitoring: Template) -> dict[str, Any]:
    return dict(monitoring.find_resources("AWS::CloudWatch::Dashboard"))


def _widgets(monitoring: Template, service: Template) -> list[dict[str, Any]]:
    (dashboard,) = _dashboards(monitoring).values()
    body = dashboard["Properties"]["DashboardBody"]
    outputs = service.to_json()["Outputs"]
    widgets: list[dict[str, Any]] = json.loads(_render(body, outputs))["widgets"]
    return widgets


def _metrics(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every graphed metric as {namespace, name, dimensions} or {expression}."""
    found = []
    for widget in widgets:
        for line in widget["properties"].get("metrics", []):
            fields = [item for item in line if isinstance(item, str)]
            options = next((item for item in line if isinstance(item, dict)), {})
            if "expression" in options:
                found.append({"expression": options["expression"]})
            else:
                namespace, name, *pairs = fields
                dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
                found.append({"namespace": namespace, "name": name, "dimensions": dimensions})
    return found


def _logical_id(service: Template, resource_type: str) -> str:
    (logical_id,) = service.find_resources(resource_type)
    return str(logical_id)


def _function_id(service: Template) -> str:
    functions = service.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": contract.HANDLER_ENTRY}}
    )
    (logical_id,) = functions
    return str(logical_id)


@pytest.fixture(scope="module")
def monitoring_template(stage: LedgerStage) -> Template:
    return Template.from_stack(stage.monitoring)


@pytest.fixture(scope="module")
def widgets(monitoring_template: Template, service_template: Template) -> list[dict[str, Any]]:
    return _widgets(monitoring_template, service_template)


@pytest.fixture(scope="module")
def metrics(widgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _metrics(widgets)


def _dimension_values(metrics: list[dict[str, Any]], dimension: str) -> set[str]:
    return {m["dimensions"][dimension] for m in metrics if dimension in m.get("dimensions", {})}


def test_one_dashboard_per_stage_named_for_the_runbooks(
    stage: LedgerStage, monitoring_template: Template
) -> None:
    (dashboard,) = _dashboards(monitoring_template).values()
    expected = contract.DASHBOARD_NAME_FORMAT.format(stage=stage.service.stage_config.name)
    assert dashboard["Properties"]["DashboardName"] == expected == "upload-ledger-test"


def test_dashboard_graphs_the_live_alias_and_its_function(
    service_template: Template, metrics: list[dict[str, Any]]
) -> None:
    function_id = _function_id(service_template)
    alias_metrics = [
        m
        for m in metrics
        if m.get("dimensions", {}).get("Resource") == f"{function_id}:{contract.ALIAS_NAME}"
    ]
    assert {m["dimensions"]["FunctionName"] for m in alias_metrics} == {function_id}
    graphed = {m["name"] for m in alias_metrics}
    assert {"Invocations", "Errors", "Duration", "Throttles", "ConcurrentExecutions"} <= graphed


def test_canary_shows_one_line_per_version_of_the_alias(
    service_template: Template, metrics: list[dict[str, Any]]
) -> None:
    function_id = _function_id(service_template)
    searches = [m["expression"] for m in metrics if "ExecutedVersion" in m.get("expression", "")]
    for name in ("Invocations", "Errors", "Duration"):
        assert any(f'MetricName="{name}"' in search for search in searches), name
    for search in searches:
        assert f'FunctionName="{function_id}"' in search
        assert f'Resource="{function_id}:{contract.ALIAS_NAME}"' in search


def test_dashboard_graphs_the_table_the_queue_and_the_bucket(
    service_template: Template, metrics: list[dict[str, Any]]
) -> None:
    assert _dimension_values(metrics, "TableName") == {
        _logical_id(service_template, "AWS::DynamoDB::Table")
    }
    assert _dimension_values(metrics, "QueueName") == {
        _logical_id(service_template, "AWS::SQS::Queue")
    }
    (upload_bucket_id,) = service_template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"VersioningConfiguration": {"Status": "Enabled"}}}
    )
    assert _dimension_values(metrics, "BucketName") == {upload_bucket_id}
    queue_metrics = {m["name"] for m in metrics if m.get("namespace") == "AWS/SQS"}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} <= queue_metrics
    table_metrics = {m["name"] for m in metrics if m.get("namespace") == "AWS/DynamoDB"}
    assert {"ConsumedWriteCapacityUnits", "WriteThrottleEvents", "SystemErrors"} <= table_metrics
    bucket_metrics = {m["name"] for m in metrics if m.get("namespace") == "AWS/S3"}
    assert {"NumberOfObjects", "BucketSizeBytes", "PutRequests"} <= bucket_metrics


def test_business_flow_sets_uploads_against_files_recorded(
    service_template: Template, metrics: list[dict[str, Any]]
) -> None:
    ledger = {
        m["name"]: m["dimensions"]
        for m in metrics
        if m.get("namespace") == contract.METRICS_NAMESPACE
    }
    # The dimensions the handler emits: the service, and the stage it was deployed as.
    dimensions = {
        contract.METRICS_SERVICE_DIMENSION: contract.SERVICE_NAME,
        contract.METRICS_STAGE_DIMENSION: "test",
    }
    assert ledger == {
        contract.METRIC_FILES_RECORDED: dimensions,
        contract.METRIC_RECORD_FAILURES: dimensions,
    }
    (uploads,) = [m for m in metrics if m.get("name") == "PutRequests"]
    assert uploads["dimensions"]["FilterId"] == S3_REQUEST_METRICS_ID
    # S3 publishes PutRequests only for a bucket with that metrics configuration.
    service_template.has_resource_properties(
        "AWS::S3::Bucket", {"MetricsConfigurations": [{"Id": S3_REQUEST_METRICS_ID}]}
    )


def test_dashboard_reads_top_to_bottom_alarms_flow_function_queue_table_bucket(
    widgets: list[dict[str, Any]],
) -> None:
    def first_row(predicate: Callable[[str], bool]) -> int:
        return min(int(w["y"]) for w in widgets if predicate(json.dumps(w["properties"])))

    rows = [
        first_row(lambda p: "Alarms" in p),
        first_row(lambda p: contract.METRIC_FILES_RECORDED in p),
        first_row(lambda p: '"AWS/Lambda"' in p),
        first_row(lambda p: "ExecutedVersion" in p),
        first_row(lambda p: '"AWS/SQS"' in p),
        first_row(lambda p: '"AWS/DynamoDB"' in p),
        first_row(lambda p: '"NumberOfObjects"' in p),
    ]
    assert rows == sorted(rows)
    assert len(set(rows)) == len(rows)


def test_alarm_status_widget_lists_every_alarm_of_the_service_stack() -> None:
    stage = build_stage(StageWithExtraAlarms)
    service = Template.from_stack(stage.service)
    widgets = _widgets(Template.from_stack(stage.monitoring), service)
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    listed = status["properties"]["alarms"]
    registered = [_render(stage.service.resolve(a.alarm_arn), {}) for a in stage.service.alarms]
    assert sorted(listed) == sorted(registered)
    # Every alarm the service stack synthesizes, including the two this test added.
    assert set(listed) == set(service.find_resources("AWS::CloudWatch::Alarm"))
    for alarm_id in EXTRA_ALARM_IDS:
        assert any(logical_id.startswith(alarm_id) for logical_id in listed)


def test_alarm_status_widget_shows_the_real_gating_and_paging_alarms(
    stage: LedgerStage, service_template: Template
) -> None:
    widgets = _widgets(Template.from_stack(stage.monitoring), service_template)
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    alarms = service_template.find_resources("AWS::CloudWatch::Alarm")
    # Every gate of the canary and every paging alarm, all on the one status widget.
    assert len(alarms) == len(CATALOGUE)
    assert set(status["properties"]["alarms"]) == set(alarms)


def test_without_alarms_the_dashboard_says_so_instead_of_an_empty_status_widget() -> None:
    stage = build_stage(StageWithoutAlarms)
    widgets = _widgets(Template.from_stack(stage.monitoring), Template.from_stack(stage.service))
    assert [w for w in widgets if w["type"] == "alarm"] == []
    assert any("defines no alarms" in w["properties"].get("markdown", "") for w in widgets)


def test_monitoring_adds_no_alarm_of_its_own(monitoring_template: Template) -> None:
    # The service stack owns every alarm (and the canary gate); a copy here would page twice.
    monitoring_template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    monitoring_template.resource_count_is("AWS::CloudWatch::CompositeAlarm", 0)


def test_monitoring_deploys_after_the_service_and_pins_nothing_in_it(
    stage: LedgerStage, monitoring_template: Template, service_template: Template
) -> None:
    assert stage.service in stage.monitoring.dependencies
    body = json.dumps(monitoring_template.to_json())
    # Weak references (cdk.json): outputs read at deploy time, no exports to block changes.
    assert "Fn::GetStackOutput" in body
    assert "Fn::ImportValue" not in body
    assert all("Export" not in o for o in service_template.to_json()["Outputs"].values())


def _stack_outputs_read_inside(value: Any, parent: str = "") -> list[str]:
    """The intrinsic functions that directly contain an Fn::GetStackOutput."""
    if isinstance(value, list):
        return [p for item in value for p in _stack_outputs_read_inside(item, parent)]
    if not isinstance(value, dict):
        return []
    found = [parent] if "Fn::GetStackOutput" in value else []
    for key, item in value.items():
        inner = key if key.startswith("Fn::") else parent
        found += _stack_outputs_read_inside(item, inner)
    return found


def test_cross_stack_reads_sit_where_cloudformation_and_cfn_lint_accept_them(
    monitoring_template: Template,
) -> None:
    # cfn-lint (pinned) accepts Fn::GetStackOutput as a property value or inside Fn::Join
    # and Fn::Select, not inside Fn::Split: an alias ARN split across stacks fails lint.
    positions = _stack_outputs_read_inside(monitoring_template.to_json()["Resources"])
    assert positions
    assert set(positions) <= {"", "Fn::Join", "Fn::Select"}


def test_how_to_read_names_the_alarms_the_deployment_group_is_gated_by(
    widgets: list[dict[str, Any]], service_template: Template
) -> None:
    texts = [w["properties"]["markdown"] for w in widgets if w["type"] == "text"]
    (markdown,) = [text for text in texts if "gating" in text]
    named = re.search(r"an alarm gating the deployment \(([^)]*)\)", markdown)
    assert named is not None, markdown
    in_text = set(re.findall(r"`([^`]+)`", named.group(1)))
    (group,) = service_template.find_resources("AWS::CodeDeploy::DeploymentGroup").values()
    alarms = service_template.find_resources("AWS::CloudWatch::Alarm")
    gating = {
        alarms[_render(alarm["Name"], {})]["Properties"]["AlarmName"]
        for alarm in group["Properties"]["AlarmConfiguration"]["Alarms"]
    }
    # The alarm names end with the catalogue's `what` ("upload-ledger-<stage>-<what>").
    assert {name for name in gating if any(name.endswith(f"-{w}") for w in in_text)} == gating
    assert len(in_text) == len(gating)
    assert "canary-new-version-error-rate" in in_text
    assert "function-errors" not in in_text  # it pages; it does not gate
