"""The one place for names and tuned values. Stacks, sandbox and tests import from here."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk.aws_logs import RetentionDays

SERVICE_NAME = "upload-ledger"
STACK_PREFIX = "UploadLedger"

# Handler: the asset is the repository root filtered down to the `handler` package, so
# the same `handler.app` module path works in Lambda, in tests and in the sandbox.
HANDLER_PACKAGE = "handler"
HANDLER_ENTRY = "handler.app.lambda_handler"
HANDLER_ASSET_EXCLUDES = [
    "*",
    ".*",
    "!handler",
    "!handler/**",
    "**/__pycache__",
    "handler/requirements.txt",
]
TABLE_NAME_ENV = "TABLE_NAME"
# The handler adds the stage as a metric dimension, so stages sharing an account stay apart.
STAGE_NAME_ENV = "STAGE_NAME"
METRICS_STAGE_DIMENSION = "stage"

# Powertools: the AWS-managed layer must carry the same version the tests ran against
# (handler/requirements.txt pins it; a test keeps the two equal).
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_LAYER_PARAMETER = "/aws/service/powertools/python/arm64/python3.12/" + POWERTOOLS_VERSION
METRICS_NAMESPACE = "UploadLedger"
METRIC_FILES_RECORDED = "FilesRecorded"
METRIC_RECORD_FAILURES = "RecordFailures"

# Ledger table: the original's schema, so existing readers keep working.
PARTITION_KEY = "filename"

# Lambda sizing. The handler is I/O-bound (one DynamoDB write per record): 256 MB on
# arm64 costs $0.03 per million uploads in duration (make bench), a rounding error next to
# the S3 PUTs, while leaving CPU for the cold start's imports. Check Init Duration after a
# deploy before going lower.
LAMBDA_MEMORY_MB = 256
# A batch of S3 records needs one DynamoDB write each; 30 s leaves room for SDK retries
# with backoff without letting a stuck call hold a concurrency slot for long.
LAMBDA_TIMEOUT = Duration.seconds(30)
# Every function's log group: a month of logs for investigating an incident.
LOG_RETENTION = RetentionDays.ONE_MONTH
LOG_RETENTION_DAYS = 30  # what LOG_RETENTION means in the template (tests compare)

# Async invocation: Lambda's maximum of 2 retries (3 attempts) rides out throttling and
# brief DynamoDB trouble; after 6 hours an event goes to the failure queue for a human.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)
# Failed events wait two weeks (SQS's maximum) for someone to redrive them.
FAILURE_QUEUE_RETENTION = Duration.days(14)

# Deployment
ALIAS_NAME = "live"

# Upload bucket lifecycle: old versions are kept long enough to recover from mistakes.
NONCURRENT_VERSION_EXPIRATION = Duration.days(90)
INCOMPLETE_UPLOAD_EXPIRATION = Duration.days(7)
ACCESS_LOG_EXPIRATION = Duration.days(365)

# CloudFormation output keys: the smoke test and the pipeline read these.
OUTPUT_BUCKET_NAME = "BucketName"
OUTPUT_TABLE_NAME = "TableName"
OUTPUT_FUNCTION_ARN = "FunctionArn"
OUTPUT_ALIAS_ARN = "AliasArn"
OUTPUT_FAILURE_QUEUE_URL = "FailureQueueUrl"
OUTPUT_ALARM_TOPIC_ARN = "AlarmTopicArn"
OUTPUT_SMOKE_TEST_ROLE_ARN = "SmokeTestRoleArn"

# Alarms. Names are `upload-ledger-<stage>-<what>`, so two stages in one account never
# collide; each `<what>` has its runbook at runbooks/<what>.md (a test keeps both in step).
RUNBOOKS_DIR = "runbooks"
RUNBOOK_URL_TEMPLATE = (
    "https://github.com/{repository}/blob/{branch}/" + RUNBOOKS_DIR + "/{name}.md"
)
DEPLOYMENT_ROLLED_BACK_RUNBOOK = "deployment-rolled-back"
# CodeDeploy states that end a release without it reaching 100%: the topic hears of each.
DEPLOYMENT_FAILED_STATES = ("FAILURE", "STOP")

ALARM_CANARY_ERROR_RATE = "canary-error-rate"
ALARM_CANARY_P99_DURATION = "canary-p99-duration"
ALARM_CANARY_THROTTLES = "canary-throttles"
ALARM_FUNCTION_ERRORS = "function-errors"
ALARM_FAILURE_QUEUE_NOT_EMPTY = "failure-queue-not-empty"
ALARM_TABLE_THROTTLES = "table-throttled-requests"
ALARM_TABLE_SYSTEM_ERRORS = "table-system-errors"

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

# Pre-traffic hook: CodeDeploy runs it before shifting any traffic to a new version. The
# asset is the repository root filtered down to the `hooks` package (like the handler's).
HOOK_ENTRY = "hooks.pre_traffic.lambda_handler"
HOOK_ASSET_EXCLUDES = ["*", ".*", "!hooks", "!hooks/**", "**/__pycache__"]
HOOK_MEMORY_MB = 128
# Long enough for the new version's cold start plus its own full timeout.
HOOK_TIMEOUT = Duration.seconds(LAMBDA_TIMEOUT.to_seconds() + 30)
# Reserved ledger keys: real uploads never start with this; the hook may only touch these.
HEALTHCHECK_KEY_PREFIX = "__healthcheck__/"
HOOK_ENV_TARGET_VERSION_ARN = "TARGET_VERSION_ARN"
HOOK_ENV_TABLE_NAME = "TABLE_NAME"
HOOK_ENV_BUCKET_NAME = "HEALTHCHECK_BUCKET_NAME"
HOOK_ENV_KEY_PREFIX = "HEALTHCHECK_KEY_PREFIX"
OUTPUT_DEPLOYMENT_APPLICATION_NAME = "DeploymentApplicationName"
OUTPUT_DEPLOYMENT_GROUP_NAME = "DeploymentGroupName"
OUTPUT_PRE_TRAFFIC_HOOK_NAME = "PreTrafficHookName"

# Monitoring: one dashboard per stage. Runbooks name it, so the name is part of the contract.
DASHBOARD_NAME_FORMAT = SERVICE_NAME + "-{stage}"
# Alarms the monitoring facade would make start with this (it makes none today: the
# service stack owns every alarm, so the dashboard never duplicates one).
MONITORING_ALARM_PREFIX_FORMAT = SERVICE_NAME + "-{stage}"
# Three hours: a 5-minute canary is readable at one-minute resolution, and a deployment
# from earlier in the shift is still on screen to compare against.
DASHBOARD_RANGE = Duration.hours(3)
DASHBOARD_METRIC_PERIOD = Duration.minutes(1)
DASHBOARD_LATENCY_PERCENTILES = ("p50", "p90", "p99")
# Powertools Metrics adds this dimension, valued with the service name, to every metric.
METRICS_SERVICE_DIMENSION = "service"
# S3 publishes request metrics (PutRequests...) only for a bucket metrics configuration;
# "EntireBucket" is the id the S3 console gives a configuration without a filter.
S3_REQUEST_METRICS_ID = "EntireBucket"

# Local sandbox (sandbox/): moto on 127.0.0.1 stands in for AWS; these tune the emulation.
SANDBOX_STATE_DIR = ".sandbox"
SANDBOX_STATE_FILE = "state.json"
SANDBOX_HOST = "127.0.0.1"
# moto's own fake credentials and account: nothing here can reach a real account.
SANDBOX_ACCESS_KEY = "testing"
SANDBOX_SECRET_KEY = "testing"  # noqa: S105 - moto accepts any secret; this is not one
SANDBOX_ACCOUNT_ID = "123456789012"
SANDBOX_FALLBACK_REGION = "eu-central-1"
# Lambda retries an async event after about 1 then 2 minutes; locally seconds are enough
# to show the behaviour (the delay doubles per attempt, as in AWS).
SANDBOX_RETRY_DELAY_SECONDS = 1.0
# Execution environments the local runtime keeps warm: Lambda runs async events concurrently.
SANDBOX_CONCURRENCY = 2
# Transport-queue polling: short polls so Ctrl-C and close() return at once.
SANDBOX_POLL_INTERVAL_SECONDS = 0.05
# Out-of-order delivery: each event waits a random time up to this before its invocation.
SANDBOX_SHUFFLE_WINDOW_SECONDS = 0.5
SANDBOX_TRANSPORT_QUEUE = "sandbox-s3-events"

# Smoke test (scripts/smoke_test.py): the post-deploy step uploads under this prefix only,
# and the stage's smoke-test role may touch nothing else.
SMOKE_TEST_PREFIX = "smoke-tests/"
SMOKE_TEST_TIMEOUT_SECONDS = 120

# Pipeline (pipeline/stack.py)
PIPELINE_STACK_NAME = f"{STACK_PREFIX}Pipeline"
# The CDK CLI the self-mutation step uses: the same version package.json pins (a test
# keeps the two equal), so the pipeline never updates itself with a different CLI.
CDK_CLI_VERSION = "2.1148.1"
# `cdk bootstrap`'s default qualifier: names the roles the stage checks assume.
BOOTSTRAP_QUALIFIER = "hnb659fds"
# CodeBuild's runtimes: Python as the constraints were generated with, Node for the CLI.
BUILD_RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}


def smoke_test_role_name(stage_name: str, region: str) -> str:
    """The stage's smoke-test role: named, so the pipeline can allow assuming exactly it."""
    return f"{STACK_PREFIX}-{stage_name}-{region}-smoke-test"


# CDK's singleton function that applies S3 notification configurations (construct id).
BUCKET_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
