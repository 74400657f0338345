"""The service's CloudWatch alarms, as a catalogue: one row per alarm, one runbook per row.

Every alarm is named `upload-ledger-<stage>-<what>`, notifies the alarm topic on ALARM and
on OK, and carries the link to `runbooks/<what>.md` in its description. A gating alarm
watches the `live` alias and stops a canary release (CodeDeploy rolls back); a paging alarm
wakes someone up and does not stop a deployment. Adding an alarm is one `AlarmRow` in
`CATALOGUE` and one runbook (tests/infra/test_alarms.py keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(frozen=True)
class Evaluation:
    """How an alarm reads its metric: `datapoints_to_alarm` breaching periods out of
    `evaluation_periods` periods of `period` each (CloudWatch's "M out of N")."""

    period: Duration
    evaluation_periods: int
    datapoints_to_alarm: int


# Gating alarms watch the `live` alias during the 10%/5-minute canary. CodeDeploy only
# acts on an alarm that reaches ALARM inside that window, so period x evaluation periods
# must stay within 5 minutes: 1-minute periods, 2 breaching minutes out of 3 (one noisy
# minute is not enough, two are, and the alarm can fire about 3 minutes into the canary).
CANARY_WINDOW = Duration.minutes(5)
GATE = Evaluation(Duration.minutes(1), evaluation_periods=3, datapoints_to_alarm=2)
# Paging alarms: not part of the gate, they wake someone up. One 5-minute period each.
PAGE = Evaluation(Duration.minutes(5), evaluation_periods=1, datapoints_to_alarm=1)

# A release that breaks every invocation it gets shows ~10% errors at the alias while it
# holds 10% of traffic; 5% trips on that with margin, while the old version's background
# errors (normally zero for this service) stay far below.
CANARY_ERROR_RATE_PERCENT = 5
# ...counted only in a minute with at least this many errors, so a lone failure on a quiet
# stage (1 of 3 invocations is 33%) cannot roll back a good release on its own.
CANARY_MIN_ERRORS = 2
# The new version's own rate counts a minute from its first error: it gets a tenth of the
# traffic, so at 100 uploads a minute a version failing one upload in five shows about 2
# errors a minute, too few for a 2-error floor to see in 2 of 3 minutes (make drill-matrix).
# A lone failure still cannot roll back a release: it takes 2 breaching minutes of 3.
NEW_VERSION_MIN_ERRORS = 1
# p99 at 80% of the timeout: the new version is close to being killed mid-batch.
CANARY_P99_DURATION_FRACTION = 0.8
CANARY_P99_DURATION_MS = int(LAMBDA_TIMEOUT.to_milliseconds() * CANARY_P99_DURATION_FRACTION)

# The table operations the service performs: PutItem (handler), GetItem/DeleteItem (hook).
TABLE_OPERATIONS = [
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.GET_ITEM,
    dynamodb.Operation.DELETE_ITEM,
]


@dataclass(frozen=True)
class Watched:
    """The resources the alarms watch."""

    function: lambda_.Function
    alias: lambda_.Alias
    table: dynamodb.Table
    failure_queue: sqs.Queue


# A row's metric: built from the watched resources, at the row's evaluation period.
MetricOf = Callable[[Watched, Duration], cloudwatch.IMetric]


@dataclass(frozen=True)
class AlarmRow:
    """One alarm: what it is called (its runbook is runbooks/<what>.md), what it watches,
    when it fires (metric >= threshold), whether it gates releases, and what it means."""

    what: str
    metric: MetricOf
    threshold: float
    gates: bool
    summary: str

    @property
    def evaluation(self) -> Evaluation:
        return GATE if self.gates else PAGE

    @property
    def description(self) -> str:
        return f"{self.summary} Gates canary deployments." if self.gates else self.summary


# Gating alarms: on the alias, which is what S3 invokes and what CodeDeploy shifts.
# Missing data is NOT_BREACHING on purpose: no invocations in a minute is no evidence of
# a bad release, and BREACHING would roll back every release of a quiet stage. The
# pre-traffic hook supplies the positive evidence that the new version works.


def _alias_error_rate(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    # A rate, not a count: it trips on a broken 10% canary at any traffic level and
    # does not scale with volume. A minute counts only with CANARY_MIN_ERRORS errors or
    # more: on a quiet stage one bad upload out of three invocations is 33%, and must
    # not roll back a good release by itself (the pre-traffic hook vouches for the new
    # version; a version that breaks every invocation still fails twice soon enough).
    alias = watched.alias
    return cloudwatch.MathExpression(
        expression=f"IF(errors >= {CANARY_MIN_ERRORS}, 100 * errors / invocations, 0)",
        using_metrics={
            "errors": alias.metric_errors(statistic="Sum", period=period),
            "invocations": alias.metric_invocations(statistic="Sum", period=period),
        },
        label="Error rate (%) of the live alias",
        period=period,
    )


def _new_version_error_rate(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    # The same rate over the new version's own invocations (Lambda's ExecutedVersion
    # dimension of the alias). While it holds 10% of traffic, a version failing 20% of
    # uploads moves the alias's rate by only 2%, under any alias threshold that spares a
    # good release (make drill-matrix). Each deployment publishes a new version and this
    # alarm is updated before the alias (the deployment group the alias update waits for
    # refers to it), so it always watches the version being released.
    alias = watched.alias
    dimensions = {
        "FunctionName": watched.function.function_name,
        "Resource": f"{watched.function.function_name}:{alias.alias_name}",
        "ExecutedVersion": alias.version.version,
    }

    def metric(name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map=dimensions,
            statistic="Sum",
            period=period,
        )

    return cloudwatch.MathExpression(
        expression=f"IF(errors >= {NEW_VERSION_MIN_ERRORS}, 100 * errors / invocations, 0)",
        using_metrics={"errors": metric("Errors"), "invocations": metric("Invocations")},
        label="Error rate (%) of the version being released",
        period=period,
    )


def _alias_p99_duration(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    return watched.alias.metric_duration(statistic="p99", period=period)


def _alias_throttles(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    return watched.alias.metric_throttles(statistic="Sum", period=period)


# Paging alarms: every stage, every version. Missing data is NOT_BREACHING: these metrics
# are only published when something happens (an error, a throttle, an active queue), so
# silence means all is well.


def _function_errors(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    # The unqualified function's metric covers every version and alias, including the
    # pre-traffic hook's invocations of a new version.
    return watched.function.metric_errors(statistic="Sum", period=period)


def _failure_queue_visible(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    # Maximum: one message left behind is an upload missing from the ledger.
    return watched.failure_queue.metric_approximate_number_of_messages_visible(
        statistic="Maximum", period=period
    )


def _table_throttled_requests(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    return watched.table.metric_throttled_requests_for_operations(
        operations=TABLE_OPERATIONS, statistic="Sum", period=period
    )


def _table_system_errors(watched: Watched, period: Duration) -> cloudwatch.IMetric:
    return watched.table.metric_system_errors_for_operations(
        operations=TABLE_OPERATIONS, statistic="Sum", period=period
    )


CATALOGUE: tuple[AlarmRow, ...] = (
    AlarmRow(
        "canary-error-rate",
        _alias_error_rate,
        threshold=CANARY_ERROR_RATE_PERCENT,
        gates=True,
        summary=f"More than {CANARY_ERROR_RATE_PERCENT}% of invocations of the live alias failed.",
    ),
    AlarmRow(
        "canary-new-version-error-rate",
        _new_version_error_rate,
        threshold=CANARY_ERROR_RATE_PERCENT,
        gates=True,
        summary=(
            f"More than {CANARY_ERROR_RATE_PERCENT}% of the invocations that ran the version "
            "being released failed."
        ),
    ),
    AlarmRow(
        "canary-p99-duration",
        _alias_p99_duration,
        threshold=CANARY_P99_DURATION_MS,
        gates=True,
        summary=(
            f"p99 duration of the live alias is at or above {CANARY_P99_DURATION_MS} ms "
            f"({CANARY_P99_DURATION_FRACTION:.0%} of the timeout)."
        ),
    ),
    AlarmRow(
        "canary-throttles",
        _alias_throttles,
        threshold=1,
        gates=True,
        summary="Invocations of the live alias are being throttled.",
    ),
    AlarmRow(
        "function-errors",
        _function_errors,
        threshold=1,
        gates=False,
        summary="The ledger function failed invocations (any version).",
    ),
    AlarmRow(
        "failure-queue-not-empty",
        _failure_queue_visible,
        threshold=1,
        gates=False,
        summary=(
            "S3 events gave up after Lambda's retries and wait in the failure queue: "
            "those uploads are not in the ledger until redriven."
        ),
    ),
    AlarmRow(
        "table-throttled-requests",
        _table_throttled_requests,
        threshold=1,
        gates=False,
        summary="DynamoDB throttled requests to the ledger table.",
    ),
    AlarmRow(
        "table-system-errors",
        _table_system_errors,
        threshold=1,
        gates=False,
        summary="DynamoDB returned internal server errors (HTTP 500) for the ledger table.",
    ),
)


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
    """Every alarm of `catalogue` for one stage: `deployment_alarms` gate, `paging_alarms` page."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        watched: Watched,
        topic: sns.ITopic,
        runbooks: RunbookLinks,
        catalogue: tuple[AlarmRow, ...] = CATALOGUE,
    ) -> None:
        super().__init__(scope, construct_id)
        action = cw_actions.SnsAction(topic)
        self.all = [self._alarm(row, stage_name, watched, runbooks, action) for row in catalogue]
        self.deployment_alarms = [
            a for a, row in zip(self.all, catalogue, strict=True) if row.gates
        ]
        self.paging_alarms = [
            a for a, row in zip(self.all, catalogue, strict=True) if not row.gates
        ]

    def _alarm(
        self,
        row: AlarmRow,
        stage_name: str,
        watched: Watched,
        runbooks: RunbookLinks,
        action: cw_actions.SnsAction,
    ) -> cloudwatch.Alarm:
        evaluation = row.evaluation
        alarm = cloudwatch.Alarm(
            self,
            row.what,
            alarm_name=contract.alarm_name(stage_name, row.what),
            alarm_description=f"{row.description} Runbook: {runbooks.url(row.what)}",
            metric=row.metric(watched, evaluation.period),
            threshold=row.threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=evaluation.evaluation_periods,
            datapoints_to_alarm=evaluation.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm
