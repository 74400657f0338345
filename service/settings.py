"""The ServiceStack's tuned values, in CDK's types. Names the parts share are in `contract.py`."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk.aws_logs import RetentionDays

import contract

# The ledger function's asset: the repository root filtered down to the `handler` package
# and the contract it imports, so `handler.app` is the same module path everywhere.
HANDLER_ASSET_EXCLUDES = [
    "*",
    ".*",
    f"!{contract.HANDLER_PACKAGE}",
    f"!{contract.HANDLER_PACKAGE}/**",
    f"!{contract.CONTRACT_MODULE_FILE}",
    "**/__pycache__",
    f"{contract.HANDLER_PACKAGE}/requirements.txt",
]

# Powertools: the AWS-managed layer must carry the same version the tests ran against
# (handler/requirements.txt pins it; a test keeps the two equal).
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_LAYER_PARAMETER = "/aws/service/powertools/python/arm64/python3.12/" + POWERTOOLS_VERSION

# Lambda sizing (contract.LAMBDA_MEMORY_MB). The handler is I/O-bound (one DynamoDB write
# per record): 256 MB on arm64 costs $0.03 per million uploads in duration (make bench), a
# rounding error next to the S3 PUTs, while leaving CPU for the cold start's imports. Check
# Init Duration after a deploy before going lower.
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

# Upload bucket lifecycle: old versions are kept long enough to recover from mistakes.
NONCURRENT_VERSION_EXPIRATION = Duration.days(90)
INCOMPLETE_UPLOAD_EXPIRATION = Duration.days(7)
ACCESS_LOG_EXPIRATION = Duration.days(365)
# S3 publishes request metrics (PutRequests...) only for a bucket metrics configuration;
# "EntireBucket" is the id the S3 console gives a configuration without a filter.
S3_REQUEST_METRICS_ID = "EntireBucket"

# CodeDeploy states that end a release without it reaching 100%: the topic hears of each.
DEPLOYMENT_FAILED_STATES = ("FAILURE", "STOP")

# Pre-traffic hook: CodeDeploy runs it before shifting any traffic to a new version. The
# asset is the repository root filtered down to the `hooks` package (like the handler's).
HOOK_ASSET_EXCLUDES = [
    "*",
    ".*",
    f"!{contract.HOOK_PACKAGE}",
    f"!{contract.HOOK_PACKAGE}/**",
    f"!{contract.CONTRACT_MODULE_FILE}",
    "**/__pycache__",
]
HOOK_MEMORY_MB = 128
# Long enough for the new version's cold start plus its own full timeout.
HOOK_TIMEOUT = Duration.seconds(LAMBDA_TIMEOUT.to_seconds() + 30)

# CDK's singleton function that applies S3 notification configurations (construct id).
BUCKET_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
