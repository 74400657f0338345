"""How a new Lambda version reaches traffic: CodeDeploy canary on the `live` alias.

Order of a release: CloudFormation publishes the new version and updates the alias; the
alias's update policy hands that to CodeDeploy, which (1) runs the pre-traffic hook
against the new version, (2) shifts 10% of traffic to it for 5 minutes while watching the
gating alarms, (3) shifts the rest. A failed hook or an alarm rolls the alias back.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

import contract
from compliance.nag import acknowledge, logical_id
from service import settings
from service.functions import python_function


class CanaryDeployment(Construct):
    """The deployment group on `alias`, gated by `alarms`, with a pre-traffic hook."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        alias: lambda_.Alias,
        table: dynamodb.Table,
        bucket: s3.IBucket,
        alarms: list[cloudwatch.Alarm],
        asset_root: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._function = function
        self._alias = alias
        self.pre_traffic_hook = self._build_hook(table, bucket, asset_root, removal_policy)
        self.role = self._build_codedeploy_role(alarms)
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "DeploymentGroup",
            alias=alias,
            deployment_config=codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
            alarms=alarms,
            # A failed poll of the alarms must not let an unwatched canary through.
            ignore_poll_alarms_failure=False,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
            pre_hook=self.pre_traffic_hook,
            role=self.role,
        )
        self._acknowledge_hook_invoke()

    def _build_hook(
        self,
        table: dynamodb.Table,
        bucket: s3.IBucket,
        asset_root: str,
        removal_policy: RemovalPolicy,
    ) -> lambda_.Function:
        new_version = self._function.current_version
        hook = python_function(
            self,
            "PreTrafficHook",
            description="CodeDeploy pre-traffic hook: a synthetic upload through the new version.",
            role_description="Pre-traffic hook: invokes the new ledger version, checks its item.",
            asset_root=asset_root,
            asset_excludes=settings.HOOK_ASSET_EXCLUDES,
            handler=contract.HOOK_ENTRY,
            memory_mb=settings.HOOK_MEMORY_MB,
            timeout=settings.HOOK_TIMEOUT,
            removal_policy=removal_policy,
            environment={
                # The version ARN changes with every release, so the hook is updated in the
                # same CloudFormation change, before the alias update starts the deployment.
                contract.HOOK_ENV_TARGET_VERSION_ARN: new_version.function_arn,
                contract.HOOK_ENV_TABLE_NAME: table.table_name,
                contract.HOOK_ENV_BUCKET_NAME: bucket.bucket_name,
                contract.HOOK_ENV_KEY_PREFIX: contract.HEALTHCHECK_KEY_PREFIX,
            },
        )
        # Only the version under test: not $LATEST, not the alias, not the old versions.
        hook.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[new_version.function_arn]
            )
        )
        # Only the reserved health-check items, never a real upload's ledger entry.
        hook.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:DeleteItem"],
                resources=[table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [f"{contract.HEALTHCHECK_KEY_PREFIX}*"]
                    }
                },
            )
        )
        return hook

    def _build_codedeploy_role(self, alarms: list[cloudwatch.Alarm]) -> iam.Role:
        # Instead of the AWS-managed AWSCodeDeployRoleForLambdaLimited (every alias and
        # alarm in the account): the same actions, on this alias and these alarms only.
        # The group adds the hook's invoke permission itself.
        role = iam.Role(
            self,
            "CodeDeployRole",
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description="CodeDeploy: shifts the live alias, reads the gating alarms.",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "lambda:GetAlias",
                    "lambda:UpdateAlias",
                    "lambda:GetProvisionedConcurrencyConfig",
                ],
                resources=[self._function.function_arn, self._alias.function_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[_alarm_arn(alarm) for alarm in alarms],
            )
        )
        # LambdaDeploymentGroup attaches AWSCodeDeployRoleForLambdaLimited to any role it
        # is given; the statements above grant the same Lambda and CloudWatch actions
        # scoped to this alias and these alarms (its S3 statements serve S3-hosted AppSpecs,
        # which CloudFormation-driven deployments do not use), so drop the managed policy.
        cast(iam.CfnRole, role.node.default_child).add_property_deletion_override(
            "ManagedPolicyArns"
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "cdk-nag reads the construct before overrides: the deletion override above removes "
            "this managed policy from the template (a test pins it), scoped statements replace it.",
        )
        return role

    def _acknowledge_hook_invoke(self) -> None:
        """The group grants its role invoke on the hook's versions (`<hook ARN>:*`)."""
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.pre_traffic_hook)}.Arn>:*]",
            "CodeDeploy invokes the pre-traffic hook by qualified ARN; the wildcard covers the "
            "versions of that one hook function and nothing else.",
        )


def _alarm_arn(alarm: cloudwatch.Alarm) -> str:
    # Built from the name rather than `alarm.alarm_arn` (a GetAtt), so the role's policy
    # can be created before the alarms and CloudFormation has fewer ordering constraints.
    return Stack.of(alarm).format_arn(
        service="cloudwatch",
        resource="alarm",
        resource_name=alarm.alarm_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
