"""The alarm catalogue: one CloudWatch alarm per row, each with SNS actions and a runbook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

import contract
from compliance.nag import logical_id
from service.alarms import (
    CANARY_ERROR_RATE_PERCENT,
    CANARY_MIN_ERRORS,
    CANARY_P99_DURATION_FRACTION,
    CANARY_WINDOW,
    CATALOGUE,
    NEW_VERSION_MIN_ERRORS,
    AlarmRow,
    RunbookLinks,
    ServiceAlarms,
    Watched,
)
from service.settings import LAMBDA_TIMEOUT
from stage import LedgerStage
from tests.infra.conftest import alarms_of, single_resource

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = REPOSITORY_ROOT / contract.RUNBOOKS_DIR
# Runbooks no single alarm owns: a rolled-back release is announced by the alarm that
# caused it (or by the pipeline when the pre-traffic hook failed).
RUNBOOKS_WITHOUT_ALARM = {f"{contract.DEPLOYMENT_ROLLED_BACK_RUNBOOK}.md", "README.md"}
RUNBOOK_LINK = re.compile(r"Runbook: (https://\S+)$")


def test_each_catalogue_row_is_one_alarm_of_the_stage(service_template: Template) -> None:
    by_name = {alarm["AlarmName"]: alarm for alarm in alarms_of(service_template).values()}
    assert set(by_name) == {contract.alarm_name("test", row.what) for row in CATALOGUE}
    for row in CATALOGUE:
        alarm = by_name[contract.alarm_name("test", row.what)]
        assert alarm["Threshold"] == row.threshold, row.what
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", row.what
        assert alarm["EvaluationPeriods"] == row.evaluation.evaluation_periods, row.what
        assert alarm["DatapointsToAlarm"] == row.evaluation.datapoints_to_alarm, row.what
        assert alarm["AlarmDescription"].startswith(row.summary), row.what


def test_gating_rows_gate_and_paging_rows_do_not(stage: LedgerStage) -> None:
    gating = {alarm.node.id for alarm in stage.service.deployment_alarms}
    assert gating == {row.what for row in CATALOGUE if row.gates}
    assert all(
        row.description.endswith("Gates canary deployments.") for row in CATALOGUE if row.gates
    )
    assert not any("Gates" in row.description for row in CATALOGUE if not row.gates)


def test_every_row_has_its_runbook() -> None:
    missing = [row.what for row in CATALOGUE if not (RUNBOOKS / f"{row.what}.md").is_file()]
    assert missing == []


def test_a_new_row_is_a_new_alarm_with_its_runbook_link_and_topic() -> None:
    # What adding an alarm takes: one row (and its runbook). Built on a bare stack, so the
    # catalogue is the only input.
    stack = cdk.Stack(cdk.App(), "Bare")
    function = lambda_.Function(
        stack,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )
    watched = Watched(
        function=function,
        alias=lambda_.Alias(stack, "Alias", alias_name="live", version=function.current_version),
        table=dynamodb.Table(
            stack,
            "Table",
            partition_key=dynamodb.Attribute(name="k", type=dynamodb.AttributeType.STRING),
        ),
        failure_queue=sqs.Queue(stack, "Queue"),
    )
    row = AlarmRow(
        "new-alarm",
        lambda w, period: w.alias.metric_invocations(statistic="Sum", period=period),
        threshold=7,
        gates=True,
        summary="Something new happened.",
    )
    alarms = ServiceAlarms(
        stack,
        "Alarms",
        stage_name="dev",
        watched=watched,
        topic=sns.Topic(stack, "Topic"),
        runbooks=RunbookLinks(repository="acme/ledger", branch="main"),
        catalogue=(row,),
    )
    assert [alarm.node.id for alarm in alarms.deployment_alarms] == ["new-alarm"]
    (alarm,) = alarms_of(Template.from_stack(stack)).values()
    topic_id, _ = single_resource(Template.from_stack(stack), "AWS::SNS::Topic")
    assert alarm["AlarmName"] == "upload-ledger-dev-new-alarm"
    assert alarm["AlarmDescription"] == (
        "Something new happened. Gates canary deployments. Runbook: "
        "https://github.com/acme/ledger/blob/main/runbooks/new-alarm.md"
    )
    assert alarm["Period"] == Duration.minutes(1).to_seconds()
    assert alarm["Threshold"] == 7
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id}]


def test_service_registers_every_alarm_in_the_template(
    stage: LedgerStage, service_template: Template
) -> None:
    registered = {logical_id(alarm) for alarm in stage.service.alarms}
    assert registered == set(alarms_of(service_template))
    assert set(stage.service.deployment_alarms) <= set(stage.service.alarms)


def _period_seconds(alarm: dict[str, Any]) -> int:
    if "Period" in alarm:
        return int(alarm["Period"])
    return max(int(m["MetricStat"]["Period"]) for m in alarm["Metrics"] if "MetricStat" in m)


def test_every_alarm_can_fire_within_the_canary_window(service_template: Template) -> None:
    for name, alarm in alarms_of(service_template).items():
        window = _period_seconds(alarm) * alarm["EvaluationPeriods"]
        assert window <= CANARY_WINDOW.to_seconds(), name
        assert alarm["DatapointsToAlarm"] <= alarm["EvaluationPeriods"], name
        # Chosen, not defaulted: see service/alarms.py for why silence is not breaching.
        assert alarm["TreatMissingData"] == "notBreaching", name


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(service_template: Template) -> None:
    topic_id, _ = single_resource(service_template, "AWS::SNS::Topic")
    for name, alarm in alarms_of(service_template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name


def test_alarm_names_carry_the_stage(service_template: Template) -> None:
    names = [alarm["AlarmName"] for alarm in alarms_of(service_template).values()]
    assert names
    assert all(name.startswith(f"{contract.SERVICE_NAME}-test-") for name in names), names
    assert len(set(names)) == len(names)


def test_p99_duration_threshold_follows_the_function_timeout(service_template: Template) -> None:
    service_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": contract.alarm_name("test", "canary-p99-duration"),
            "ExtendedStatistic": "p99",
            "Threshold": LAMBDA_TIMEOUT.to_milliseconds() * CANARY_P99_DURATION_FRACTION,
        },
    )


def _runbook_links(template: Template) -> dict[str, str]:
    links = {}
    for alarm in alarms_of(template).values():
        match = RUNBOOK_LINK.search(alarm["AlarmDescription"])
        assert match, f"{alarm['AlarmName']} has no runbook link"
        links[alarm["AlarmName"]] = match.group(1)
    return links


def test_every_alarm_links_to_a_runbook_that_exists(service_template: Template) -> None:
    base = "https://github.com/example-org/upload-ledger/blob/main/runbooks/"
    for name, url in _runbook_links(service_template).items():
        assert url.startswith(base), (name, url)
        assert (RUNBOOKS / url.removeprefix(base)).is_file(), (name, url)


def test_every_runbook_belongs_to_an_alarm(service_template: Template) -> None:
    linked = {url.rsplit("/", 1)[1] for url in _runbook_links(service_template).values()}
    present = {path.name for path in RUNBOOKS.glob("*.md")}
    assert RUNBOOKS_WITHOUT_ALARM - {"README.md"} <= present
    assert present - RUNBOOKS_WITHOUT_ALARM == linked


def test_runbook_links_follow_the_configured_repository_and_branch() -> None:
    from tests.infra.conftest import build_stage

    stage = build_stage(githubRepository="acme/ledger-fork", githubBranch="release")
    links = _runbook_links(Template.from_stack(stage.service))
    assert all(
        url.startswith("https://github.com/acme/ledger-fork/blob/release/runbooks/")
        for url in links.values()
    )


def test_error_rate_gate_ignores_a_lone_error_on_a_quiet_stage(service_template: Template) -> None:
    alarms = service_template.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"AlarmName": contract.alarm_name("test", "canary-error-rate")}},
    )
    (alarm,) = alarms.values()
    (expression,) = [m["Expression"] for m in alarm["Properties"]["Metrics"] if "Expression" in m]
    assert expression == (f"IF(errors >= {CANARY_MIN_ERRORS}, 100 * errors / invocations, 0)")
    assert alarm["Properties"]["Threshold"] == CANARY_ERROR_RATE_PERCENT


def test_new_version_gate_watches_only_the_version_being_released(
    service_template: Template,
) -> None:
    # The drill matrix (README) showed a version failing 20% of uploads passing the alias's
    # rate at any traffic: this gate reads the new version's own invocations.
    (alarm,) = service_template.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"AlarmName": contract.alarm_name("test", "canary-new-version-error-rate")}},
    ).values()
    (alias_id,) = service_template.find_resources("AWS::Lambda::Alias")
    alias = service_template.find_resources("AWS::Lambda::Alias")[alias_id]["Properties"]
    metrics = {m["Id"]: m for m in alarm["Properties"]["Metrics"]}
    (expression,) = [m["Expression"] for m in metrics.values() if "Expression" in m]
    assert expression == f"IF(errors >= {NEW_VERSION_MIN_ERRORS}, 100 * errors / invocations, 0)"
    assert alarm["Properties"]["DatapointsToAlarm"] == 2  # a lone failure cannot roll back
    for metric_id in ("errors", "invocations"):
        dimensions = {
            d["Name"]: d["Value"] for d in metrics[metric_id]["MetricStat"]["Metric"]["Dimensions"]
        }
        # The same version the alias points at after the update: the one being released.
        assert dimensions["ExecutedVersion"] == alias["FunctionVersion"]
        assert set(dimensions) == {"FunctionName", "Resource", "ExecutedVersion"}
    assert alarm["Properties"]["Threshold"] == CANARY_ERROR_RATE_PERCENT
