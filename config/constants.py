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
