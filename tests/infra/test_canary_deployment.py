"""Alarm-gated canary releases: the deployment group, its alarms, the hook, the runbooks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

import contract
from service.alarms import (
    CANARY_ERROR_RATE_PERCENT,
    CANARY_MIN_ERRORS,
    CANARY_P99_DURATION_FRACTION,
    CANARY_WINDOW,
)
from service.settings import LAMBDA_TIMEOUT, LOG_RETENTION_DAYS
from stage import LedgerStage

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = REPOSITORY_ROOT / contract.RUNBOOKS_DIR
# Runbooks no single alarm owns: a rolled-back release is announced by the alarm that
# caused it (or by the pipeline when the pre-traffic hook failed).
RUNBOOKS_WITHOUT_ALARM = {f"{contract.DEPLOYMENT_ROLLED_BACK_RUNBOOK}.md", "README.md"}
RUNBOOK_LINK = re.compile(r"Runbook: (https://\S+)$")


def _logical_id(construct: Any) -> str:
    return Stack.of(construct).get_logical_id(construct.node.default_child)


def _alarms(template: Template) -> dict[str, Any]:
    return {
        name: resource["Properties"]
        for name, resource in template.find_resources("AWS::CloudWatch::Alarm").items()
    }


def _single(template: Template, resource_type: str) -> tuple[str, Any]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, list(found)
    return next(iter(found.items()))


def test_deployment_group_shifts_ten_percent_for_five_minutes_and_rolls_back(
    service_template: Template,
) -> None:
    _, group = _single(service_template, "AWS::CodeDeploy::DeploymentGroup")
    properties = group["Properties"]
    assert properties["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
    assert properties["AutoRollbackConfiguration"]["Enabled"] is True
    assert set(properties["AutoRollbackConfiguration"]["Events"]) == {
        "DEPLOYMENT_FAILURE",
        "DEPLOYMENT_STOP_ON_REQUEST",
        "DEPLOYMENT_STOP_ON_ALARM",
    }


def test_every_gating_alarm_is_in_the_enabled_alarm_configuration(
    stage: LedgerStage, service_template: Template
) -> None:
    _, group = _single(service_template, "AWS::CodeDeploy::DeploymentGroup")
    configuration = group["Properties"]["AlarmConfiguration"]
    assert configuration["Enabled"] is True
    assert configuration.get("IgnorePollAlarmFailure", False) is False
    gating = {_logical_id(alarm) for alarm in stage.service.deployment_alarms}
    assert {alarm["Name"]["Ref"] for alarm in configuration["Alarms"]} == gating
    gated_names = {_alarms(service_template)[alarm_id]["AlarmName"] for alarm_id in gating}
    assert gated_names == {
        f"{contract.SERVICE_NAME}-test-{what}"
        for what in (
            contract.ALARM_CANARY_ERROR_RATE,
            contract.ALARM_CANARY_P99_DURATION,
            contract.ALARM_CANARY_THROTTLES,
        )
    }


def test_alias_update_goes_through_codedeploy_with_the_pre_traffic_hook(
    stage: LedgerStage, service_template: Template
) -> None:
    group_id, _ = _single(service_template, "AWS::CodeDeploy::DeploymentGroup")
    application_id, _ = _single(service_template, "AWS::CodeDeploy::Application")
    hook_id = _logical_id(stage.service.pre_traffic_hook)
    service_template.has_resource(
        "AWS::Lambda::Alias",
        {
            "UpdatePolicy": {
                "CodeDeployLambdaAliasUpdate": {
                    "ApplicationName": {"Ref": application_id},
                    "DeploymentGroupName": {"Ref": group_id},
                    "BeforeAllowTrafficHook": {"Ref": hook_id},
                }
            }
        },
    )


def test_service_registers_every_alarm_in_the_template(
    stage: LedgerStage, service_template: Template
) -> None:
    registered = {_logical_id(alarm) for alarm in stage.service.alarms}
    assert registered == set(_alarms(service_template))
    assert set(stage.service.deployment_alarms) <= set(stage.service.alarms)


def _period_seconds(alarm: dict[str, Any]) -> int:
    if "Period" in alarm:
        return int(alarm["Period"])
    return max(int(m["MetricStat"]["Period"]) for m in alarm["Metrics"] if "MetricStat" in m)


def test_every_alarm_can_fire_within_the_canary_window(service_template: Template) -> None:
    for name, alarm in _alarms(service_template).items():
        window = _period_seconds(alarm) * alarm["EvaluationPeriods"]
        assert window <= CANARY_WINDOW.to_seconds(), name
        assert alarm["DatapointsToAlarm"] <= alarm["EvaluationPeriods"], name
        # Chosen, not defaulted: see service/alarms.py for why silence is not breaching.
        assert alarm["TreatMissingData"] == "notBreaching", name


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok(service_template: Template) -> None:
    topic_id, _ = _single(service_template, "AWS::SNS::Topic")
    for name, alarm in _alarms(service_template).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name


def test_alarm_names_carry_the_stage(service_template: Template) -> None:
    names = [alarm["AlarmName"] for alarm in _alarms(service_template).values()]
    assert names
    assert all(name.startswith(f"{contract.SERVICE_NAME}-test-") for name in names), names
    assert len(set(names)) == len(names)


def test_p99_duration_threshold_follows_the_function_timeout(service_template: Template) -> None:
    service_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{contract.SERVICE_NAME}-test-{contract.ALARM_CANARY_P99_DURATION}",
            "ExtendedStatistic": "p99",
            "Threshold": LAMBDA_TIMEOUT.to_milliseconds() * CANARY_P99_DURATION_FRACTION,
        },
    )


def _runbook_links(template: Template) -> dict[str, str]:
    links = {}
    for alarm in _alarms(template).values():
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


@pytest.fixture(scope="module")
def hook(stage: LedgerStage, service_template: Template) -> dict[str, Any]:
    resources: dict[str, Any] = service_template.to_json()["Resources"]
    hook_resource: dict[str, Any] = resources[_logical_id(stage.service.pre_traffic_hook)]
    return hook_resource


def test_hook_runs_its_own_package_on_the_current_runtime(
    hook: dict[str, Any], service_template: Template
) -> None:
    version_id, _ = _single(service_template, "AWS::Lambda::Version")
    table_id, _ = _single(service_template, "AWS::DynamoDB::Table")
    properties = hook["Properties"]
    assert properties["Handler"] == contract.HOOK_ENTRY
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    variables = properties["Environment"]["Variables"]
    # The version being deployed, so the hook tests exactly what is about to take traffic.
    assert variables[contract.HOOK_ENV_TARGET_VERSION_ARN] == {"Ref": version_id}
    assert variables[contract.HOOK_ENV_TABLE_NAME] == {"Ref": table_id}
    assert variables[contract.HOOK_ENV_KEY_PREFIX] == contract.HEALTHCHECK_KEY_PREFIX


def test_hook_logs_to_its_own_group_with_retention(
    hook: dict[str, Any], service_template: Template
) -> None:
    log_group_id = hook["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = service_template.to_json()["Resources"][log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == LOG_RETENTION_DAYS


def _role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    role = template.to_json()["Resources"][role_id]
    assert "ManagedPolicyArns" not in role["Properties"], "no AWS-managed policies"
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action) if isinstance(action, list) else {action}


def test_hook_may_only_invoke_the_new_version_and_touch_healthcheck_items(
    hook: dict[str, Any], service_template: Template
) -> None:
    version_id, _ = _single(service_template, "AWS::Lambda::Version")
    group_id, _ = _single(service_template, "AWS::CodeDeploy::DeploymentGroup")
    statements = _role_statements(service_template, hook["Properties"]["Role"]["Fn::GetAtt"][0])
    by_action = {action: s for s in statements for action in _actions(s)}
    assert set(by_action) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "lambda:InvokeFunction",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "codedeploy:PutLifecycleEventHookExecutionStatus",
    }
    assert by_action["lambda:InvokeFunction"]["Resource"] == {"Ref": version_id}
    assert by_action["dynamodb:GetItem"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{contract.HEALTHCHECK_KEY_PREFIX}*"]}
    }
    assert group_id in str(by_action["codedeploy:PutLifecycleEventHookExecutionStatus"]["Resource"])
    assert all("*" not in str(s["Resource"]) for s in statements)


def test_codedeploy_role_is_scoped_to_the_alias_and_the_gating_alarms(
    stage: LedgerStage, service_template: Template
) -> None:
    _, group = _single(service_template, "AWS::CodeDeploy::DeploymentGroup")
    role_id = group["Properties"]["ServiceRoleArn"]["Fn::GetAtt"][0]
    statements = _role_statements(service_template, role_id)
    actions = set().union(*(_actions(s) for s in statements))
    assert actions == {
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetProvisionedConcurrencyConfig",
        "cloudwatch:DescribeAlarms",
        "lambda:InvokeFunction",
    }
    assert all(s["Resource"] != "*" for s in statements)


def test_alarm_topic_key_is_rotated_and_usable_by_cloudwatch(service_template: Template) -> None:
    key_id, key = _single(service_template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    service_template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= _actions(s)
        for s in statements
    )
    service_template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                            }
                        )
                    ]
                )
            }
        },
    )


def test_outputs_name_what_the_runbooks_need(service_template: Template) -> None:
    outputs = service_template.to_json()["Outputs"]
    for key in (
        contract.OUTPUT_DEPLOYMENT_APPLICATION_NAME,
        contract.OUTPUT_DEPLOYMENT_GROUP_NAME,
        contract.OUTPUT_PRE_TRAFFIC_HOOK_NAME,
    ):
        assert key in outputs


def test_a_failed_or_stopped_deployment_is_announced_on_the_topic_with_its_runbook(
    service_template: Template,
) -> None:
    topic_id = next(iter(service_template.find_resources("AWS::SNS::Topic")))
    rules = service_template.find_resources("AWS::Events::Rule")
    (rule,) = rules.values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.codedeploy"]
    assert pattern["detail"]["state"] == ["FAILURE", "STOP"]
    group_id = next(iter(service_template.find_resources("AWS::CodeDeploy::DeploymentGroup")))
    assert pattern["detail"]["deploymentGroup"] == [{"Ref": group_id}]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    assert "runbooks/deployment-rolled-back.md" in json.dumps(target["InputTransformer"])
    # EventBridge may publish to the encrypted topic: the key policy lets it use the key.
    key = next(iter(service_template.find_resources("AWS::KMS::Key").values()))
    assert "events.amazonaws.com" in json.dumps(key["Properties"]["KeyPolicy"])


def test_error_rate_gate_ignores_a_lone_error_on_a_quiet_stage(service_template: Template) -> None:
    alarms = service_template.find_resources(
        "AWS::CloudWatch::Alarm",
        {
            "Properties": {
                "AlarmName": f"{contract.SERVICE_NAME}-test-{contract.ALARM_CANARY_ERROR_RATE}"
            }
        },
    )
    (alarm,) = alarms.values()
    (expression,) = [m["Expression"] for m in alarm["Properties"]["Metrics"] if "Expression" in m]
    assert expression == (f"IF(errors >= {CANARY_MIN_ERRORS}, 100 * errors / invocations, 0)")
    assert alarm["Properties"]["Threshold"] == CANARY_ERROR_RATE_PERCENT
