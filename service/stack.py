"""ServiceStack: the upload bucket, the ledger function behind its `live` alias, the table,
the alarms that page and gate releases, and the CodeDeploy canary that ships new versions.

Read top to bottom, `__init__` is the table of contents; each `_build_*` makes one thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

import contract
from compliance.nag import acknowledge, logical_id
from config.settings import StageConfig
from service import settings
from service.alarms import RunbookLinks, ServiceAlarms, Watched
from service.deployment import CanaryDeployment
from service.functions import python_function

REPOSITORY_ROOT = str(Path(__file__).resolve().parent.parent)


class ServiceStack(Stack):
    """Everything that records uploads, for one stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        runbooks: RunbookLinks,
        alarm_emails: tuple[str, ...] = (),
        smoke_test_account: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.stage_config = stage
        self._removal = RemovalPolicy.RETAIN if stage.retain_data else RemovalPolicy.DESTROY
        Tags.of(self).add("service", contract.SERVICE_NAME)
        Tags.of(self).add("stage", stage.name)

        self.access_logs_bucket = self._build_access_logs_bucket()
        self.bucket = self._build_upload_bucket()
        self.table = self._build_table()
        self.failure_queue = self._build_failure_queue()
        self.function = self._build_function()
        self.alias = self._build_live_alias()
        self._grant_least_privilege()
        self._notify_alias_on_upload()
        self.alarm_topic = self._build_alarm_topic(alarm_emails)
        # Every alarm of the service, registered as it is made: the dashboard shows them
        # all and a test checks each has SNS actions and a runbook.
        self.alarms: list[cloudwatch.Alarm] = []
        self.deployment_alarms = self._build_alarms(runbooks)
        self.deployment_group = self._build_canary_deployment()
        self._notify_on_failed_deployment(runbooks)
        self.smoke_test_role = (
            self._build_smoke_test_role(smoke_test_account) if smoke_test_account else None
        )
        # Kept by key: the pipeline's smoke step reads them (env_from_cfn_outputs).
        self.outputs = self._build_outputs()

    def _build_access_logs_bucket(self) -> s3.Bucket:
        return self._private_bucket(
            "AccessLogsBucket",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=settings.ACCESS_LOG_EXPIRATION)],
        )

    def _build_upload_bucket(self) -> s3.Bucket:
        return self._private_bucket(
            "UploadBucket",
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="upload-bucket/",
            # Request metrics (PutRequests, per minute) are how the dashboard counts uploads
            # against FilesRecorded; S3 publishes them only for a metrics configuration, at
            # CloudWatch custom-metric prices. Storage metrics are daily: too slow for that.
            metrics=[s3.BucketMetrics(id=settings.S3_REQUEST_METRICS_ID)],
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=settings.NONCURRENT_VERSION_EXPIRATION,
                    abort_incomplete_multipart_upload_after=settings.INCOMPLETE_UPLOAD_EXPIRATION,
                    expired_object_delete_marker=True,
                )
            ],
        )

    def _private_bucket(self, construct_id: str, **options: Any) -> s3.Bucket:
        """Every bucket of the service: S3-managed encryption, no public access, TLS 1.2+
        only, kept or emptied with the stage's data; `options` add what the bucket is for."""
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            removal_policy=self._removal,
            auto_delete_objects=not self.stage_config.retain_data,
            **options,
        )

    def _build_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "LedgerTable",
            partition_key=dynamodb.Attribute(
                name=contract.PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=self.stage_config.retain_data,
            removal_policy=self._removal,
        )

    def _build_failure_queue(self) -> sqs.Queue:
        # Lambda's on-failure destination: an event lands here after its last retry.
        queue = sqs.Queue(
            self,
            "FailureQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=settings.FAILURE_QUEUE_RETENTION,
            removal_policy=self._removal,
        )
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination: the alias's on-failure "
            "destination after Lambda's retries. Nothing consumes it automatically; an operator "
            "redrives it (runbook), so a DLQ behind it would only hide failed events further.",
        )
        return queue

    def _build_function(self) -> lambda_.Function:
        return python_function(
            self,
            "LedgerFunction",
            description="Records each S3 upload in the ledger table.",
            role_description="Ledger function: writes its own table, log group and queue only.",
            asset_root=REPOSITORY_ROOT,
            asset_excludes=settings.HANDLER_ASSET_EXCLUDES,
            handler=contract.HANDLER_ENTRY,
            memory_mb=contract.LAMBDA_MEMORY_MB,
            timeout=settings.LAMBDA_TIMEOUT,
            removal_policy=self._removal,
            traced=True,
            layers=[self._powertools_layer()],
            reserved_concurrent_executions=self.stage_config.reserved_concurrency,
            environment={
                contract.TABLE_NAME_ENV: self.table.table_name,
                contract.POWERTOOLS_SERVICE_NAME_ENV: contract.SERVICE_NAME,
                contract.POWERTOOLS_METRICS_NAMESPACE_ENV: contract.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                contract.STAGE_NAME_ENV: self.stage_config.name,
            },
        )

    def _powertools_layer(self) -> lambda_.ILayerVersion:
        # AWS publishes each release's layer ARN in a public SSM parameter; resolving it
        # at deploy time keeps synth offline and the layer equal to the pinned library.
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, settings.POWERTOOLS_LAYER_PARAMETER
        )
        return lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", layer_arn)

    def _build_live_alias(self) -> lambda_.Alias:
        # S3 invokes the alias asynchronously; retries and the failure destination are
        # configured on the alias because that is the qualifier being invoked.
        return lambda_.Alias(
            self,
            "LiveAlias",
            alias_name=contract.ALIAS_NAME,
            version=self.function.current_version,
            retry_attempts=settings.ASYNC_RETRY_ATTEMPTS,
            max_event_age=settings.ASYNC_MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.failure_queue),
        )

    def _grant_least_privilege(self) -> None:
        # A conditional PutItem is the function's only table operation.
        self.table.grant(self.function, "dynamodb:PutItem")

    def _notify_alias_on_upload(self) -> None:
        # The alias, not the function: otherwise $LATEST gets every upload and the canary
        # never sees S3 traffic (the original demo's main bug).
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.alias)
        )
        # CDK's own singleton function that writes the bucket's notification configuration
        # at deploy time; its role is made inside CDK and cannot be replaced.
        notifications_handler = self.node.find_child(settings.BUCKET_NOTIFICATIONS_HANDLER_ID)
        acknowledge(
            notifications_handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's BucketNotificationsHandler (deploy-time only) gets the AWS-managed basic "
            "execution policy: CreateLogGroup/CreateLogStream/PutLogEvents, no data access.",
        )

    def _build_alarm_topic(self, emails: tuple[str, ...]) -> sns.Topic:
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{contract.SERVICE_NAME} {self.stage_config.name} alarms",
            master_key=self._build_alarm_topic_key(),
            enforce_ssl=True,
        )
        # The topic policy CDK writes (for enforce_ssl) replaces SNS's default one, so say
        # explicitly that this stage's alarms may publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStagesAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=self._from_this_stages_alarms(),
            )
        )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _build_alarms(self, runbooks: RunbookLinks) -> list[cloudwatch.Alarm]:
        """Registers every alarm in `self.alarms`; returns the subset that gates releases."""
        alarms = ServiceAlarms(
            self,
            "Alarms",
            stage_name=self.stage_config.name,
            watched=Watched(
                function=self.function,
                alias=self.alias,
                table=self.table,
                failure_queue=self.failure_queue,
            ),
            topic=self.alarm_topic,
            runbooks=runbooks,
        )
        self.alarms.extend(alarms.all)
        return alarms.deployment_alarms

    def _build_canary_deployment(self) -> codedeploy.LambdaDeploymentGroup:
        canary = CanaryDeployment(
            self,
            "Canary",
            function=self.function,
            alias=self.alias,
            table=self.table,
            bucket=self.bucket,
            alarms=self.deployment_alarms,
            asset_root=REPOSITORY_ROOT,
            removal_policy=self._removal,
        )
        self.pre_traffic_hook = canary.pre_traffic_hook
        return canary.deployment_group

    def _notify_on_failed_deployment(self, runbooks: RunbookLinks) -> None:
        # A release the pre-traffic hook rejects trips no alarm (no user traffic reached
        # it), so CodeDeploy's own state change is what tells people a release stopped.
        message = events.RuleTargetInput.from_text(
            f"{contract.SERVICE_NAME} {self.stage_config.name}: CodeDeploy deployment "
            f"{events.EventField.from_path('$.detail.deploymentId')} ended in "
            f"{events.EventField.from_path('$.detail.state')}; the live alias is back on the "
            f"previous version. Runbook: {runbooks.url(contract.DEPLOYMENT_ROLLED_BACK_RUNBOOK)}"
        )
        rule_name = f"{contract.SERVICE_NAME}-{self.stage_config.name}-deployment-failed"
        events.Rule(
            self,
            "DeploymentFailedRule",
            rule_name=rule_name,
            description="Tells the alarm topic when a canary deployment fails or is stopped.",
            event_pattern=events.EventPattern(
                source=["aws.codedeploy"],
                detail_type=["CodeDeploy Deployment State-change Notification"],
                detail={
                    "state": list(settings.DEPLOYMENT_FAILED_STATES),
                    "application": [self.deployment_group.application.application_name],
                    "deploymentGroup": [self.deployment_group.deployment_group_name],
                },
            ),
            targets=[
                targets.SnsTopic(
                    self.alarm_topic, message=message, role=self._deployment_events_role(rule_name)
                )
            ],
        )

    def _deployment_events_role(self, rule_name: str) -> iam.Role:
        # EventBridge publishes through a role rather than as its service principal, so
        # neither the topic nor its key names events.amazonaws.com: the role may publish to
        # this topic only, and only this rule in this account may assume it. The rule's ARN
        # is built from its name: referencing the rule would make a cycle (key -> rule ->
        # topic -> key).
        role = iam.Role(
            self,
            "DeploymentEventsRole",
            description="EventBridge: publishes failed-deployment notices to the alarm topic.",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "ArnEquals": {
                        "aws:SourceArn": self.format_arn(
                            service="events", resource="rule", resource_name=rule_name
                        )
                    },
                }
            ),
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "Publishing to the KMS-encrypted alarm topic needs a data key of the topic's own "
            "key; the grant names that one key, and GenerateDataKey* is CDK's grant for it.",
        )
        return role

    def _from_this_stages_alarms(self) -> dict[str, dict[str, str]]:
        # Confused-deputy guard: CloudWatch acts only for this stage's alarms, in this
        # account (aws:SourceAccount and aws:SourceArn, IAM User Guide, "The confused
        # deputy problem").
        return {
            "StringEquals": {"aws:SourceAccount": self.account},
            "ArnLike": {
                "aws:SourceArn": self.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=contract.alarm_name(self.stage_config.name, "*"),
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }

    def _build_alarm_topic_key(self) -> kms.Key:
        # A customer-managed key, not alias/aws/sns: the AWS-managed key's policy cannot
        # grant CloudWatch, so alarm actions on a topic under it fail ("CloudWatch Alarms
        # does not have authorization to access the SNS topic encryption key").
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=(
                f"{contract.SERVICE_NAME} {self.stage_config.name}: encrypts the alarm topic"
            ),
            enable_key_rotation=True,
            removal_policy=self._removal,
        )
        # CloudWatch publishes alarm actions as its service principal, so the key policy
        # must name it; EventBridge publishes failed-deployment notices through its own
        # role (_notify_on_failed_deployment), which the account's IAM grants instead.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisStagesAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=self._from_this_stages_alarms(),
            )
        )
        return key

    def _build_smoke_test_role(self, trusted_account: str) -> iam.Role:
        # The pipeline's smoke step runs in the pipeline account; the stage may live in
        # another one, so it assumes this role, which can only touch smoke-test data.
        role = iam.Role(
            self,
            "SmokeTestRole",
            role_name=contract.smoke_test_role_name(
                self.stage_config.name, self.stage_config.region
            ),
            # Only the pipeline's smoke-test CodeBuild role for this stage, not every principal
            # of the pipeline account: aws:PrincipalArn names it (a role ARN as principal would
            # have to exist before this stack, and break if the role were ever recreated).
            assumed_by=iam.AccountPrincipal(trusted_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": self._smoke_test_runner_arn(trusted_account)}}
            ),
            description="Pipeline smoke test: writes and reads only smoke-test objects and items.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.bucket)}.Arn>/{contract.SMOKE_TEST_PREFIX}*]",
            "The smoke test writes a new, uniquely named object per run; the wildcard is what "
            "confines the role to the smoke-test prefix of the upload bucket.",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                # Delete the version itself, so the versioned bucket keeps nothing behind.
                actions=["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[self.bucket.arn_for_objects(f"{contract.SMOKE_TEST_PREFIX}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:DeleteItem"],
                resources=[self.table.table_arn],
                # Only items whose key is under the smoke-test prefix: never a real upload.
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [f"{contract.SMOKE_TEST_PREFIX}*"]
                    }
                },
            )
        )
        return role

    def _smoke_test_runner_arn(self, pipeline_account: str) -> str:
        return self.format_arn(
            service="iam",
            region="",
            account=pipeline_account,
            resource="role",
            resource_name=contract.smoke_test_runner_role_name(
                self.stage_config.name, self.stage_config.region
            ),
        )

    def _build_outputs(self) -> dict[str, CfnOutput]:
        outputs = {
            contract.OUTPUT_BUCKET_NAME: self.bucket.bucket_name,
            contract.OUTPUT_TABLE_NAME: self.table.table_name,
            contract.OUTPUT_FUNCTION_ARN: self.function.function_arn,
            contract.OUTPUT_ALIAS_ARN: self.alias.function_arn,
            contract.OUTPUT_FAILURE_QUEUE_URL: self.failure_queue.queue_url,
            contract.OUTPUT_ALARM_TOPIC_ARN: self.alarm_topic.topic_arn,
            contract.OUTPUT_DEPLOYMENT_APPLICATION_NAME: (
                self.deployment_group.application.application_name
            ),
            contract.OUTPUT_DEPLOYMENT_GROUP_NAME: self.deployment_group.deployment_group_name,
            contract.OUTPUT_PRE_TRAFFIC_HOOK_NAME: self.pre_traffic_hook.function_name,
        }
        if self.smoke_test_role:
            outputs[contract.OUTPUT_SMOKE_TEST_ROLE_ARN] = self.smoke_test_role.role_arn
        return {key: CfnOutput(self, key, value=value) for key, value in outputs.items()}
