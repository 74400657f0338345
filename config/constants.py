"""The one place for names and tuned values. Stacks, sandbox and tests import from here."""

from __future__ import annotations

from aws_cdk import Duration

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

# Powertools: the AWS-managed layer must carry the same version the tests ran against
# (handler/requirements.txt pins it; a test keeps the two equal).
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_LAYER_PARAMETER = "/aws/service/powertools/python/arm64/python3.12/" + POWERTOOLS_VERSION
METRICS_NAMESPACE = "UploadLedger"
METRIC_FILES_RECORDED = "FilesRecorded"
METRIC_RECORD_FAILURES = "RecordFailures"

# Ledger table: the original's schema, so existing readers keep working.
PARTITION_KEY = "filename"

# Lambda sizing. 256 MB: the handler is I/O-bound; at arm64 this is the cheapest size
# whose cold start stays well under a second (see README's Performance section).
LAMBDA_MEMORY_MB = 256
# A batch of S3 records needs one DynamoDB write each; 30 s leaves room for SDK retries
# with backoff without letting a stuck call hold a concurrency slot for long.
LAMBDA_TIMEOUT = Duration.seconds(30)
LOG_RETENTION_DAYS = 30

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
