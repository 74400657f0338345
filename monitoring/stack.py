"""MonitoringStack: the one dashboard operators watch for a stage.

Read top to bottom, `__init__` is the dashboard from top to bottom: what is alarming,
whether uploads are being recorded, the function (live alias and each version), the
failure queue, the table, the bucket. Every resource comes from the ServiceStack as an
object, so no name is copied by hand.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from cdk_monitoring_constructs import (
    AlarmFactoryDefaults,
    CustomMetricGroup,
    DefaultDashboardFactory,
    MonitoringFacade,
    SnsAlarmActionStrategy,
)
from constructs import Construct

import contract
from service.alarms import CATALOGUE
from service.settings import S3_REQUEST_METRICS_ID
from service.stack import ServiceStack

# Alarms the monitoring facade would make start with this (it makes none today: the
# service stack owns every alarm, so the dashboard never duplicates one).
MONITORING_ALARM_PREFIX_FORMAT = contract.SERVICE_NAME + "-{stage}"
# Three hours: a 5-minute canary is readable at one-minute resolution, and a deployment
# from earlier in the shift is still on screen to compare against.
DASHBOARD_RANGE = Duration.hours(3)
DASHBOARD_METRIC_PERIOD = Duration.minutes(1)
DASHBOARD_LATENCY_PERCENTILES = ("p50", "p90", "p99")

FULL_WIDTH = 24
ALARM_STATUS_HEIGHT = 4

# Named from the alarm catalogue (its gating rows), so the text can't go stale.
GATING_ALARMS = ", ".join(f"`{row.what}`" for row in CATALOGUE if row.gates)
HOW_TO_READ = f"""\
**Reading this during a deployment.** New code takes 10% of the \
`{contract.ALIAS_NAME}` alias's traffic
for 5 minutes. *Alarms*: if an alarm gating the deployment ({GATING_ALARMS}) goes to ALARM,
CodeDeploy rolls back by itself; the other alarms page and do not gate. *Per version*: the old
and the new version are two lines; compare errors and duration, not invocations (the new one
gets a tenth). *Business flow*: files recorded should follow uploads; a growing gap or record
failures means events are failing and will reach the failure queue after Lambda's retries."""


class MonitoringStack(Stack):
    """The stage's dashboard, built with cdk-monitoring-constructs from the service's objects."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: ServiceStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.service = service
        stage_name = service.stage_config.name
        self.dashboard_name = contract.DASHBOARD_NAME_FORMAT.format(stage=stage_name)
        # cdk.json makes cross-stack references weak (Fn::GetStackOutput): nothing in the
        # service stack is pinned by the dashboard, so the service can always change. The
        # outputs must exist before this stack resolves them: deploy the service first.
        self.add_stack_dependency(service, "the dashboard reads the service stack's outputs")

        self._dashboards = DefaultDashboardFactory(
            self,
            "Dashboards",
            dashboard_name_prefix=self.dashboard_name,
            # Exactly one dashboard: each one past three in an account costs money, and
            # one page is what operators and runbooks look at.
            create_dashboard=True,
            create_summary_dashboard=False,
            create_alarm_dashboard=False,
            detail_dashboard_range=DASHBOARD_RANGE,
        )
        self.facade = self._build_facade(stage_name)
        self._add_overview(stage_name)
        self._add_alarm_status()
        self._add_business_flow()
        self._add_function()
        self._add_failure_queue()
        self._add_table()
        self._add_bucket()

    @property
    def dashboard(self) -> cloudwatch.Dashboard:
        dashboard = self._dashboards.dashboard
        if dashboard is None:  # create_dashboard=True makes one; this narrows the type
            raise RuntimeError("the dashboard factory created no dashboard")
        return dashboard

    def _build_facade(self, stage_name: str) -> MonitoringFacade:
        # Same defaults as the service's own alarms, so an alarm added here later behaves
        # like theirs. None is added today: the service stack already alarms on errors,
        # latency, throttles, queue depth and table errors, and duplicates would page twice.
        topic = self.service.alarm_topic
        return MonitoringFacade(
            self,
            "Monitoring",
            alarm_factory_defaults=AlarmFactoryDefaults(
                alarm_name_prefix=MONITORING_ALARM_PREFIX_FORMAT.format(stage=stage_name),
                actions_enabled=True,
                action=SnsAlarmActionStrategy(on_alarm_topic=topic, on_ok_topic=topic),
            ),
            dashboard_factory=self._dashboards,
        )

    def _add_overview(self, stage_name: str) -> None:
        self.facade.add_large_header(f"{contract.SERVICE_NAME} · {stage_name}")
        self.facade.add_widget(
            cloudwatch.TextWidget(markdown=HOW_TO_READ, width=FULL_WIDTH, height=3)
        )

    def _add_alarm_status(self) -> None:
        # Read at synth time: the ServiceStack constructor has registered every alarm by
        # the time this stack is built (LedgerStage builds the service first).
        alarms = list(self.service.alarms)
        if not alarms:
            # An alarm status widget with no alarms would be an empty box; say why instead.
            self.facade.add_widget(
                cloudwatch.TextWidget(
                    markdown="**Alarms**: the service stack defines no alarms yet.",
                    width=FULL_WIDTH,
                    height=2,
                )
            )
            return
        self.facade.add_widget(
            cloudwatch.AlarmStatusWidget(
                title="Service alarms (those gating the deployment roll a canary back)",
                alarms=alarms,
                width=FULL_WIDTH,
                height=ALARM_STATUS_HEIGHT,
            )
        )

    def _add_business_flow(self) -> None:
        uploads = cloudwatch.Metric(
            namespace="AWS/S3",
            metric_name="PutRequests",
            dimensions_map={
                "BucketName": self.service.bucket.bucket_name,
                "FilterId": S3_REQUEST_METRICS_ID,
            },
            statistic="Sum",
            period=DASHBOARD_METRIC_PERIOD,
            label="Uploads (S3 PUT requests)",
        )
        self.facade.monitor_custom(
            alarm_friendly_name="BusinessFlow",
            human_readable_name="Business flow: uploads recorded in the ledger",
            metric_groups=[
                CustomMetricGroup(
                    title="Uploads vs files recorded",
                    metrics=[
                        uploads,
                        self._ledger_metric(contract.METRIC_FILES_RECORDED, "Recorded"),
                    ],
                ),
                CustomMetricGroup(
                    title="Record failures",
                    metrics=[self._ledger_metric(contract.METRIC_RECORD_FAILURES, "Failures")],
                ),
            ],
        )

    def _ledger_metric(self, name: str, label: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=contract.METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={
                contract.METRICS_SERVICE_DIMENSION: contract.SERVICE_NAME,
                contract.METRICS_STAGE_DIMENSION: self.service.stage_config.name,
            },
            statistic="Sum",
            period=DASHBOARD_METRIC_PERIOD,
            label=label,
        )

    def _add_function(self) -> None:
        # The alias is what S3 invokes, so its metrics are the service's traffic; during a
        # canary they blend both versions, which the per-version row below separates.
        # (Not monitor_lambda_function: its console link splits the alias ARN, and
        # Fn::Split of a weak cross-stack reference is a position cfn-lint rejects.)
        alias = self.service.alias
        self.facade.monitor_custom(
            alarm_friendly_name="LiveAlias",
            human_readable_name=f"Function: {contract.ALIAS_NAME} alias (all versions together)",
            metric_groups=[
                CustomMetricGroup(
                    title="Invocations and throttles",
                    metrics=[
                        alias.metric_invocations(**self._sum("Invocations")),
                        alias.metric_throttles(**self._sum("Throttles")),
                    ],
                ),
                CustomMetricGroup(
                    title="Errors", metrics=[alias.metric_errors(**self._sum("Errors"))]
                ),
                CustomMetricGroup(
                    title="Duration (ms)",
                    metrics=[
                        alias.metric_duration(
                            statistic=percentile, label=percentile, period=DASHBOARD_METRIC_PERIOD
                        )
                        for percentile in DASHBOARD_LATENCY_PERCENTILES
                    ],
                ),
                CustomMetricGroup(
                    title="Concurrent executions",
                    metrics=[
                        alias.metric(
                            "ConcurrentExecutions",
                            statistic="Maximum",
                            label="Concurrent",
                            period=DASHBOARD_METRIC_PERIOD,
                        )
                    ],
                ),
            ],
        )
        self.facade.monitor_custom(
            alarm_friendly_name="LiveAliasPerVersion",
            human_readable_name=f"Function: {contract.ALIAS_NAME} alias, one line per version",
            metric_groups=[
                CustomMetricGroup(
                    title="Invocations by version",
                    metrics=[self._per_version("Invocations", "Sum")],
                ),
                CustomMetricGroup(
                    title="Errors by version", metrics=[self._per_version("Errors", "Sum")]
                ),
                CustomMetricGroup(
                    title="Duration p90 by version (ms)",
                    metrics=[self._per_version("Duration", "p90")],
                ),
            ],
        )

    @staticmethod
    def _sum(label: str) -> dict[str, Any]:
        return {"statistic": "Sum", "label": label, "period": DASHBOARD_METRIC_PERIOD}

    def _per_version(self, metric_name: str, statistic: str) -> cloudwatch.MathExpression:
        # Lambda publishes invocations of an alias with an ExecutedVersion dimension; the
        # versions' numbers change with every deployment, so a search finds them all.
        function_name = self.service.function.function_name
        resource = f"{function_name}:{contract.ALIAS_NAME}"
        period = int(DASHBOARD_METRIC_PERIOD.to_seconds())
        search = (
            "{AWS/Lambda,ExecutedVersion,FunctionName,Resource} "
            f'MetricName="{metric_name}" FunctionName="{function_name}" Resource="{resource}"'
        )
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{search}', '{statistic}', {period})",
            using_metrics={},
            label="version ${PROP('Dim.ExecutedVersion')}",
            period=DASHBOARD_METRIC_PERIOD,
        )

    def _add_failure_queue(self) -> None:
        self.facade.monitor_sqs_queue(
            queue=self.service.failure_queue,
            alarm_friendly_name="FailureQueue",
            human_readable_name="Failure queue: events that failed every retry",
        )

    def _add_table(self) -> None:
        self.facade.monitor_dynamo_table(
            table=self.service.table,
            alarm_friendly_name="LedgerTable",
            human_readable_name="Ledger table",
        )

    def _add_bucket(self) -> None:
        # S3 storage metrics are daily: this row shows growth, not the last five minutes.
        self.facade.monitor_s3_bucket(
            bucket=self.service.bucket,
            alarm_friendly_name="UploadBucket",
            human_readable_name="Upload bucket (daily storage metrics)",
        )
