"""The service's CloudWatch alarms: the ones that gate a canary release and the ones that page.

Every alarm is named `upload-ledger-<stage>-<what>`, notifies the alarm topic on ALARM and
on OK, and carries the link to `runbooks/<what>.md` in its description.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import contract
from service.settings import LAMBDA_TIMEOUT

# Gating alarms watch the `live` alias during the 10%/5-minute canary. CodeDeploy only
# acts on an alarm that reaches ALARM inside that window, so period x evaluation periods
# must stay within 5 minutes: 1-minute periods, 2 breaching minutes out of 3 (one noisy
# minute is not enough, two are, and the alarm can fire about 3 minutes into the canary).
CANARY_WINDOW = Duration.minutes(5)
GATE_PERIOD = Duration.minutes(1)
GATE_EVALUATION_PERIODS = 3
GATE_DATAPOINTS_TO_ALARM = 2
# A release that breaks every invocation it gets shows ~10% errors at the alias while it
# holds 10% of traffic; 5% trips on that with margin, while the old version's background
# errors (normally zero for this service) stay far below.
CANARY_ERROR_RATE_PERCENT = 5
# ...counted only in a minute with at least this many errors, so a lone failure on a quiet
# stage (1 of 3 invocations is 33%) cannot roll back a good release on its own.
CANARY_MIN_ERRORS = 2
# p99 at 80% of the timeout: the new version is close to being killed mid-batch.
CANARY_P99_DURATION_FRACTION = 0.8
CANARY_P99_DURATION_MS = int(LAMBDA_TIMEOUT.to_milliseconds() * CANARY_P99_DURATION_FRACTION)
CANARY_THROTTLES = 1

# Paging alarms: not part of the gate, they wake someone up. One 5-minute period each.
PAGING_PERIOD = Duration.minutes(5)
PAGING_EVALUATION_PERIODS = 1
FUNCTION_ERRORS_THRESHOLD = 1
FAILURE_QUEUE_MESSAGES_THRESHOLD = 1
TABLE_THROTTLED_REQUESTS_THRESHOLD = 1
TABLE_SYSTEM_ERRORS_THRESHOLD = 1

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
        return contract.RUNBOOK_URL_TEMPLATE.format(
            repository=self.repository, branch=self.branch, name=name
        )


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
            expression=f"IF(errors >= {CANARY_MIN_ERRORS}, 100 * errors / invocations, 0)",
            using_metrics={
                "errors": alias.metric_errors(statistic="Sum", period=GATE_PERIOD),
                "invocations": alias.metric_invocations(statistic="Sum", period=GATE_PERIOD),
            },
            label="Error rate (%) of the live alias",
            period=GATE_PERIOD,
        )
        return self._gate(
            contract.ALARM_CANARY_ERROR_RATE,
            rate,
            threshold=CANARY_ERROR_RATE_PERCENT,
            summary=(
                f"More than {CANARY_ERROR_RATE_PERCENT}% of invocations of the live alias "
                "failed. Gates canary deployments."
            ),
        )

    def _canary_p99_duration(self, alias: lambda_.Alias) -> cloudwatch.Alarm:
        duration = alias.metric_duration(statistic="p99", period=GATE_PERIOD)
        return self._gate(
            contract.ALARM_CANARY_P99_DURATION,
            duration,
            threshold=CANARY_P99_DURATION_MS,
            summary=(
                f"p99 duration of the live alias is at or above {CANARY_P99_DURATION_MS} ms "
                f"({CANARY_P99_DURATION_FRACTION:.0%} of the timeout). Gates canary deployments."
            ),
        )

    def _canary_throttles(self, alias: lambda_.Alias) -> cloudwatch.Alarm:
        throttles = alias.metric_throttles(statistic="Sum", period=GATE_PERIOD)
        return self._gate(
            contract.ALARM_CANARY_THROTTLES,
            throttles,
            threshold=CANARY_THROTTLES,
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
            evaluation_periods=GATE_EVALUATION_PERIODS,
            datapoints_to_alarm=GATE_DATAPOINTS_TO_ALARM,
        )

    # Paging alarms: every stage, every version; they do not stop a deployment.

    def _function_errors(self, function: lambda_.Function) -> cloudwatch.Alarm:
        # The unqualified function's metric covers every version and alias, including the
        # pre-traffic hook's invocations of a new version.
        errors = function.metric_errors(statistic="Sum", period=PAGING_PERIOD)
        return self._page(
            contract.ALARM_FUNCTION_ERRORS,
            errors,
            threshold=FUNCTION_ERRORS_THRESHOLD,
            summary="The ledger function failed invocations (any version).",
        )

    def _failure_queue_not_empty(self, queue: sqs.Queue) -> cloudwatch.Alarm:
        # Maximum: one message left behind is an upload missing from the ledger.
        visible = queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=PAGING_PERIOD
        )
        return self._page(
            contract.ALARM_FAILURE_QUEUE_NOT_EMPTY,
            visible,
            threshold=FAILURE_QUEUE_MESSAGES_THRESHOLD,
            summary=(
                "S3 events gave up after Lambda's retries and wait in the failure queue: "
                "those uploads are not in the ledger until redriven."
            ),
        )

    def _table_throttles(self, table: dynamodb.Table) -> cloudwatch.Alarm:
        throttled = table.metric_throttled_requests_for_operations(
            operations=TABLE_OPERATIONS, statistic="Sum", period=PAGING_PERIOD
        )
        return self._page(
            contract.ALARM_TABLE_THROTTLES,
            throttled,
            threshold=TABLE_THROTTLED_REQUESTS_THRESHOLD,
            summary="DynamoDB throttled requests to the ledger table.",
        )

    def _table_system_errors(self, table: dynamodb.Table) -> cloudwatch.Alarm:
        errors = table.metric_system_errors_for_operations(
            operations=TABLE_OPERATIONS, statistic="Sum", period=PAGING_PERIOD
        )
        return self._page(
            contract.ALARM_TABLE_SYSTEM_ERRORS,
            errors,
            threshold=TABLE_SYSTEM_ERRORS_THRESHOLD,
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
            evaluation_periods=PAGING_EVALUATION_PERIODS,
            datapoints_to_alarm=PAGING_EVALUATION_PERIODS,
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
        name = contract.alarm_name(self._stage_name, what)
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
