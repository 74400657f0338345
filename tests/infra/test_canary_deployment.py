"""Alarm-gated canary releases: the deployment group, the gate, the hook, the rollback notice.

The alarms themselves are tests/infra/test_alarms.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

import contract
from compliance.nag import logical_id
from service.alarms import CATALOGUE
from service.settings import LOG_RETENTION_DAYS
from stage import LedgerStage
from tests.infra.conftest import alarms_of, single_resource


def test_deployment_group_shifts_ten_percent_for_five_minutes_and_rolls_back(
    service_template: Template,
) -> None:
    _, group = single_resource(service_template, "AWS::CodeDeploy::DeploymentGroup")
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
    _, group = single_resource(service_template, "AWS::CodeDeploy::DeploymentGroup")
    configuration = group["Properties"]["AlarmConfiguration"]
    assert configuration["Enabled"] is True
    assert configuration.get("IgnorePollAlarmFailure", False) is False
    gating = {logical_id(alarm) for alarm in stage.service.deployment_alarms}
    assert {alarm["Name"]["Ref"] for alarm in configuration["Alarms"]} == gating
    gated_names = {alarms_of(service_template)[alarm_id]["AlarmName"] for alarm_id in gating}
    assert gated_names == {contract.alarm_name("test", row.what) for row in CATALOGUE if row.gates}


def test_alias_update_goes_through_codedeploy_with_the_pre_traffic_hook(
    stage: LedgerStage, service_template: Template
) -> None:
    group_id, _ = single_resource(service_template, "AWS::CodeDeploy::DeploymentGroup")
    application_id, _ = single_resource(service_template, "AWS::CodeDeploy::Application")
    hook_id = logical_id(stage.service.pre_traffic_hook)
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


@pytest.fixture(scope="module")
def hook(stage: LedgerStage, service_template: Template) -> dict[str, Any]:
    resources: dict[str, Any] = service_template.to_json()["Resources"]
    hook_resource: dict[str, Any] = resources[logical_id(stage.service.pre_traffic_hook)]
    return hook_resource


def test_hook_runs_its_own_package_on_the_current_runtime(
    hook: dict[str, Any], service_template: Template
) -> None:
    version_id, _ = single_resource(service_template, "AWS::Lambda::Version")
    table_id, _ = single_resource(service_template, "AWS::DynamoDB::Table")
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
    version_id, _ = single_resource(service_template, "AWS::Lambda::Version")
    group_id, _ = single_resource(service_template, "AWS::CodeDeploy::DeploymentGroup")
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


def test_codedeploy_role_is_scoped_to_the_alias_and_the_gatingalarms_of(
    stage: LedgerStage, service_template: Template
) -> None:
    _, group = single_resource(service_template, "AWS::CodeDeploy::DeploymentGroup")
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
    key_id, key = single_resource(service_template, "AWS::KMS::Key")
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


def test_alarm_topic_key_serves_only_this_stages_alarms_once_each(
    service_template: Template,
) -> None:
    _, key = single_resource(service_template, "AWS::KMS::Key")
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s.get("Principal", {})]
    # One statement, for CloudWatch; EventBridge uses its own role (no events principal).
    (cloudwatch,) = services
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    alarms = json.dumps(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"])
    assert f":alarm:{contract.alarm_name('test', '*')}" in alarms
    rendered = [json.dumps(s, sort_keys=True) for s in statements]
    assert len(rendered) == len(set(rendered))


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
    # EventBridge publishes to the encrypted topic through a role only this rule, in this
    # account, may assume; the role may publish to this topic with its key, nothing else.
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = service_template.to_json()["Resources"][role_id]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    source_arn = json.dumps(trust["Condition"]["ArnEquals"]["aws:SourceArn"])
    assert f":rule/{rule['Properties']['Name']}" in source_arn
    (policy,) = [
        p
        for p in service_template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {a for s in statements for a in _actions(s)} == {
        "sns:Publish",
        "kms:Decrypt",
        "kms:GenerateDataKey*",
    }
    assert all(s["Resource"] != "*" for s in statements)
