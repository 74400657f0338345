"""The service's CloudWatch alarms: the ones that gate a canary release and the ones that page.

Every alarm is named `upload-ledger-<stage>-<what>`, notifies the alarm topic on ALARM and
on OK, and carries the link to `runbooks/<what>.md` in its description.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from config import constants as c

# The table operations the service performs: PutItem (handler), GetItem/DeleteItem (hook).
TABLE_OPERATIONS = [
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.GET_ITEM,
    dynamodb.Operation.DELETE_ITEM,
]


@dataclass(frozen=True)
class RunbookLinks:
    """Where the runbooks are published: the repository and branch the pipeline deploys."""

    repository: str
    branch: str

    def url(self, name: str) -> str:
        return c.RUNBOOK_URL_TEMPLATE.format(
            repository=self.repository, branch=self.branch, name=name
        )


def alarm_name(stage_name: str, what: str) -> str:
    return f"{c.SERVICE_NAME}-{stage_name}-{what}"


class ServiceAlarms(Construct):
    """Gating alarms (`deployment_alarms`) and paging alarms (`paging_alarms`) for one stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        function: lambda_.Function,
        alias: lambda_.Alias,
        table: dynamodb.Table,
        failure_queue: sqs.Queue,
        topic: sns.ITopic,
        runbooks: RunbookLinks,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage_name = stage_name
        self._action = cw_actions.SnsAction(topic)
        self._runbooks = runbooks
        self.deployment_alarms = [
            self._canary_error_rate(alias),
            self._canary_p99_duration(alias),
            self._canary_throttles(alias),
        ]
        self.paging_alarms = [
            self._function_errors(function),
            self._failure_queue_not_empty(failure_queue),
            self._table_throttles(table),
            self._table_system_errors(table),
        ]

    @property
    def all(self) -> list[cloudwatch.Alarm]:
        return [*self.deployment_alarms, *self.paging_alarms]

    # Gating alarms: on the alias, which is what S3 invokes and what CodeDeploy shifts.
    # Missing data is NOT_BREACHING on purpose: no invocations in a minute is no evidence of
    # a bad release, and BREACHING would roll back every release of a quiet stage. The
    # pre-traffic hook supplies the positive evidence that the new version works.

    def _canary_error_rate(self, alias: lambda_.Alias) -> cloudwatch.Alarm:
        # A rate, not a count: it trips on a broken 10% canary at any traffic level and
        # does not scale with volume. A minute counts only with CANARY_MIN_ERRORS errors or
        # more: on a quiet stage one bad upload out of three invocations is 33%, and must
        # not roll back a good release by itself (the pre-traffic hook vouches for the new
        # version; a version that breaks every invocation still fails twice soon enough).
        rate = cloudwatch.MathExpression(
            expression=f"IF(errors >= {c.CANARY_MIN_ERRORS}, 100 * errors / invocations, 0)",
            using_metrics={
                "errors": alias.metric_errors(statistic="Sum", period=c.GATE_PERIOD),
                "invocations": alias.metric_invocations(statistic="Sum", period=c.GATE_PERIOD),
            },
            label="Error rate (%) of the live alias",
            period=c.GATE_PERIOD,
        )
        return self._gate(
            c.ALARM_CANARY_ERROR_RATE,
            rate,
            threshold=c.CANARY_ERROR_RATE_PERCENT,
            summary=(
                f"More than {c.CANARY_ERROR_RATE_PERCENT}% of invocations of the live alias "
                "failed. Gates canary deployments."
            ),
        )

    def _canary_p99_duration(self, alias: lambda_.Alias) -> cloudwatch.Alarm:
        duration = alias.metric_duration(statistic="p99", period=c.GATE_PERIOD)
        return self._gate(
            c.ALARM_CANARY_P99_DURATION,
            duration,
            threshold=c.CANARY_P99_DURATION_MS,
            summary=(
                f"p99 duration of the live alias is at or above {c.CANARY_P99_DURATION_MS} ms "
                f"({c.CANARY_P99_DURATION_FRACTION:.0%} of the timeout). Gates canary deployments."
            ),
        )

    def _canary_throttles(self, alias: lambda_.Alias) -> cloudwatch.Alarm:
        throttles = alias.metric_throttles(statistic="Sum", period=c.GATE_PERIOD)
        return self._gate(
            c.ALARM_CANARY_THROTTLES,
            throttles,
            threshold=c.CANARY_THROTTLES,
            summary="Invocations of the live alias are being throttled. Gates canary deployments.",
        )

    def _gate(
        self, what: str, metric: cloudwatch.IMetric, *, threshold: float, summary: str
    ) -> cloudwatch.Alarm:
        return self._alarm(
            what,
            metric,
            threshold=threshold,
            summary=summary,
            evaluation_periods=c.GATE_EVALUATION_PERIODS,
            datapoints_to_alarm=c.GATE_DATAPOINTS_TO_ALARM,
        )

    # Paging alarms: every stage, every version; they do not stop a deployment.

    def _function_errors(self, function: lambda_.Function) -> cloudwatch.Alarm:
        # The unqualified function's metric covers every version and alias, including the
        # pre-traffic hook's invocations of a new version.
        errors = function.metric_errors(statistic="Sum", period=c.PAGING_PERIOD)
        return self._page(
            c.ALARM_FUNCTION_ERRORS,
            errors,
            threshold=c.FUNCTION_ERRORS_THRESHOLD,
            summary="The ledger function failed invocations (any version).",
        )

    def _failure_queue_not_empty(self, queue: sqs.Queue) -> cloudwatch.Alarm:
        # Maximum: one message left behind is an upload missing from the ledger.
        visible = queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=c.PAGING_PERIOD
        )
        return self._page(
            c.ALARM_FAILURE_QUEUE_NOT_EMPTY,
            visible,
            threshold=c.FAILURE_QUEUE_MESSAGES_THRESHOLD,
            summary=(
                "S3 events gave up after Lambda's retries and wait in the failure queue: "
                "those uploads are not in the ledger until redriven."
            ),
        )

    def _table_throttles(self, table: dynamodb.Table) -> cloudwatch.Alarm:
        throttled = table.metric_throttled_requests_for_operations(
            operations=TABLE_OPERATIONS, statistic="Sum", period=c.PAGING_PERIOD
        )
        return self._page(
            c.ALARM_TABLE_THROTTLES,
            throttled,
            threshold=c.TABLE_THROTTLED_REQUESTS_THRESHOLD,
            summary="DynamoDB throttled requests to the ledger table.",
        )

    def _table_system_errors(self, table: dynamodb.Table) -> cloudwatch.Alarm:
        errors = table.metric_system_errors_for_operations(
            operations=TABLE_OPERATIONS, statistic="Sum", period=c.PAGING_PERIOD
        )
        return self._page(
            c.ALARM_TABLE_SYSTEM_ERRORS,
            errors,
            threshold=c.TABLE_SYSTEM_ERRORS_THRESHOLD,
            summary="DynamoDB returned internal server errors (HTTP 500) for the ledger table.",
        )

    def _page(
        self, what: str, metric: cloudwatch.IMetric, *, threshold: float, summary: str
    ) -> cloudwatch.Alarm:
        # Missing data is NOT_BREACHING: these metrics are only published when something
        # happens (an error, a throttle, an active queue), so silence means all is well.
        return self._alarm(
            what,
            metric,
            threshold=threshold,
            summary=summary,
            evaluation_periods=c.PAGING_EVALUATION_PERIODS,
            datapoints_to_alarm=c.PAGING_EVALUATION_PERIODS,
        )

    def _alarm(
        self,
        what: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        summary: str,
        evaluation_periods: int,
        datapoints_to_alarm: int,
    ) -> cloudwatch.Alarm:
        name = alarm_name(self._stage_name, what)
        alarm = cloudwatch.Alarm(
            self,
            what,
            alarm_name=name,
            alarm_description=f"{summary} Runbook: {self._runbooks.url(what)}",
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm
