"""The ServiceStack's CloudFormation: what the service promises about its resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

import contract
from local_aws import create_ledger_table
from service.settings import (
    ASYNC_MAX_EVENT_AGE,
    ASYNC_RETRY_ATTEMPTS,
    LAMBDA_TIMEOUT,
    LOG_RETENTION_DAYS,
    POWERTOOLS_LAYER_PARAMETER,
    POWERTOOLS_VERSION,
)
from tests.infra.conftest import build_stage

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def _only(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> Any:
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.items()))


def test_notification_targets_the_live_alias_not_the_function(service_template: Template) -> None:
    alias_id, _ = _only(service_template, "AWS::Lambda::Alias")
    notifications = service_template.find_resources("Custom::S3BucketNotifications")
    (config,) = [r["Properties"]["NotificationConfiguration"] for r in notifications.values()]
    targets = [n["LambdaFunctionArn"] for n in config["LambdaFunctionConfigurations"]]
    assert targets == [{"Ref": alias_id}]
    events = [n["Events"] for n in config["LambdaFunctionConfigurations"]]
    assert events == [["s3:ObjectCreated:*"]]


def test_alias_is_named_live_on_a_published_version(service_template: Template) -> None:
    version_id, _ = _only(service_template, "AWS::Lambda::Version")
    service_template.has_resource_properties(
        "AWS::Lambda::Alias",
        {"Name": contract.ALIAS_NAME, "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]}},
    )


def test_only_s3_may_invoke_and_only_the_alias(service_template: Template) -> None:
    permissions = service_template.find_resources("AWS::Lambda::Permission")
    alias_id, _ = _only(service_template, "AWS::Lambda::Alias")
    s3_permissions = [
        p["Properties"]
        for p in permissions.values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    ]
    # Exactly one: the original demo added a second, duplicate permission by hand.
    assert len(s3_permissions) == 1
    assert s3_permissions[0]["FunctionName"] == {"Ref": alias_id}
    assert "SourceAccount" in s3_permissions[0]


def test_upload_bucket_is_private_encrypted_versioned_and_logged(
    service_template: Template,
) -> None:
    service_template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value()},
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    )
                ]
            },
        },
    )


def test_every_bucket_denies_plain_http(service_template: Template) -> None:
    policies = service_template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"].get("Bool") == {"aws:SecureTransport": "false"}
            for s in statements
            if "Condition" in s
        )


def test_table_is_on_demand_encrypted_recoverable_and_retained(
    service_template: Template,
) -> None:
    _, table = _only(
        service_template,
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": contract.PARTITION_KEY, "AttributeType": "S"}
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "DeletionProtectionEnabled": True,
        },
    )
    assert table["DeletionPolicy"] == "Retain"
    assert "ProvisionedThroughput" not in table["Properties"]


def test_local_ledger_table_is_keyed_and_billed_as_the_stacks_table(
    service_template: Template,
) -> None:
    # Tests and the benchmark make their tables with local_aws: the same table as deployed.
    class RecordingClient:
        def __init__(self) -> None:
            self.request: dict[str, Any] = {}

        def create_table(self, **request: Any) -> None:
            self.request = request

    client = RecordingClient()
    create_ledger_table(client, "ledger")
    _, table = _only(service_template, "AWS::DynamoDB::Table")
    for key in ("KeySchema", "AttributeDefinitions", "BillingMode"):
        assert client.request[key] == table["Properties"][key], key


def test_dev_stage_may_opt_out_of_retaining_data() -> None:
    stage = build_stage(
        devStage={
            "name": "scratch",
            "account": "111111111111",
            "region": "eu-west-1",
            "retainData": False,
        }
    )
    template = Template.from_stack(stage.service)
    _, table = _only(template, "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False


def test_function_runtime_tracing_sizing_and_environment(service_template: Template) -> None:
    table_id, _ = _only(service_template, "AWS::DynamoDB::Table")
    service_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.12",
            "Handler": contract.HANDLER_ENTRY,
            "Architectures": ["arm64"],
            "MemorySize": contract.LAMBDA_MEMORY_MB,
            "Timeout": LAMBDA_TIMEOUT.to_seconds(),
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": Match.any_value()},
            "Layers": [{"Ref": Match.string_like_regexp("SsmParameterValue.*powertools")}],
            "Environment": {
                "Variables": Match.object_like({contract.TABLE_NAME_ENV: {"Ref": table_id}})
            },
        },
    )


def test_powertools_layer_follows_the_pinned_library(service_template: Template) -> None:
    parameters = service_template.to_json()["Parameters"]
    layer_parameters = [p for name, p in parameters.items() if "powertools" in name]
    assert [p["Default"] for p in layer_parameters] == [POWERTOOLS_LAYER_PARAMETER]
    pins = (REPOSITORY_ROOT / "handler" / "requirements.txt").read_text(encoding="utf-8")
    assert f"aws-lambda-powertools[tracer]=={POWERTOOLS_VERSION}" in pins


def test_log_group_keeps_logs_a_month(service_template: Template) -> None:
    service_template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": LOG_RETENTION_DAYS}
    )


def test_async_failures_go_to_an_encrypted_queue_after_retries(
    service_template: Template,
) -> None:
    queue_id, _ = _only(
        service_template,
        "AWS::SQS::Queue",
        {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600},
    )
    alias_id, _ = _only(service_template, "AWS::Lambda::Alias")
    service_template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            # The alias's name, taken from its ARN: the config belongs to the alias.
            "Qualifier": {"Fn::Select": [7, {"Fn::Split": [":", {"Ref": alias_id}]}]},
            "MaximumRetryAttempts": ASYNC_RETRY_ATTEMPTS,
            "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE.to_seconds(),
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
        },
    )


def _function_policy_statements(template: Template) -> list[dict[str, Any]]:
    function = next(
        iter(
            template.find_resources(
                "AWS::Lambda::Function", {"Properties": {"Handler": contract.HANDLER_ENTRY}}
            ).values()
        )
    )
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]
    assert "ManagedPolicyArns" not in role["Properties"], "no broad AWS-managed policies"
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_function_policy_is_least_privilege(service_template: Template) -> None:
    table_id, _ = _only(service_template, "AWS::DynamoDB::Table")
    queue_id, _ = _only(service_template, "AWS::SQS::Queue")
    (function,) = service_template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": contract.HANDLER_ENTRY}}
    ).values()
    log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    allowed_resources = {
        table_id: {"dynamodb:PutItem"},
        queue_id: {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
        log_group_id: {"logs:CreateLogStream", "logs:PutLogEvents"},
    }
    statements = _function_policy_statements(service_template)
    assert statements
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in action for action in actions), statement
        if statement["Resource"] == "*":
            # X-Ray has no resource-level permissions: its two write actions are the
            # only thing AWS lets us grant on "*".
            assert set(actions) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
            continue
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for resource in resources:
            (target,) = [rid for rid in allowed_resources if rid in str(resource)]
            assert set(actions) <= allowed_resources[target], statement


def test_outputs_name_the_resources_operators_need(service_template: Template) -> None:
    outputs = service_template.to_json()["Outputs"]
    for key in (
        contract.OUTPUT_BUCKET_NAME,
        contract.OUTPUT_TABLE_NAME,
        contract.OUTPUT_FUNCTION_ARN,
        contract.OUTPUT_ALIAS_ARN,
        contract.OUTPUT_FAILURE_QUEUE_URL,
    ):
        assert key in outputs


def test_alarm_topic_is_encrypted_ssl_only_and_mails_configured_recipients(
    service_template: Template,
) -> None:
    # A customer-managed key: CloudWatch alarms cannot publish to a topic under alias/aws/sns.
    service_template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}
    )
    service_template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )
    policy = next(iter(service_template.find_resources("AWS::SNS::TopicPolicy").values()))
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s) for s in statements)
