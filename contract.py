"""The service's contract: the names its parts agree on, in one plain module.

The handler, the pre-traffic hook, the smoke test, the sandbox, the benchmark, the stacks
(service, dashboard, alarms, pipeline) and the tests all import these from here, so no
literal of the contract is written twice; so is the S3 event document the handler reads
(the hook's synthetic upload, the tests and the benchmark build theirs with it). Plain
Python, standard library only: it ships inside the function's and the hook's assets
(their asset excludes keep `contract.py`), and importing it never starts jsii. Values that
only the CDK code uses (durations, tuning, the alarm thresholds, tool versions) live next
to that code instead; sandbox tuning lives in `sandbox/settings.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

SERVICE_NAME = "upload-ledger"
STACK_PREFIX = "UploadLedger"
PIPELINE_STACK_NAME = f"{STACK_PREFIX}Pipeline"

# Entry points. Each asset is the repository root filtered down to its package (plus this
# module), so the same module paths work in Lambda, in tests and in the sandbox.
HANDLER_PACKAGE = "handler"
HANDLER_ENTRY = "handler.app.lambda_handler"
HOOK_PACKAGE = "hooks"
HOOK_ENTRY = "hooks.pre_traffic.lambda_handler"
CONTRACT_MODULE_FILE = "contract.py"

# The function's memory: the stack configures it, the benchmark prices it (see
# service/stack.py for why 256 MB).
LAMBDA_MEMORY_MB = 256

# Deployment: S3 notifications and CodeDeploy's traffic shifting both go through the alias.
ALIAS_NAME = "live"

# Ledger table: the original's schema, so existing readers keep working. One item per
# object key; the attributes below, plus the internal ordering value (handler/ledger.py).
PARTITION_KEY = "filename"
ATTR_BUCKET = "bucket"
ATTR_SIZE = "size"
ATTR_ETAG = "etag"
ATTR_EVENT_TIME = "event_time"
ATTR_EVENT_NAME = "event_name"
ATTR_VERSION_ID = "version_id"
ATTR_SEQUENCER = "sequencer"
ORDER_ATTRIBUTE = "sequencer_order"

# Environment variables of the ledger function (the ServiceStack sets them).
TABLE_NAME_ENV = "TABLE_NAME"
# The handler adds the stage as a metric dimension, so stages sharing an account stay apart.
STAGE_NAME_ENV = "STAGE_NAME"
POWERTOOLS_SERVICE_NAME_ENV = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"

# The handler's business metrics (EMF, through Powertools Metrics).
METRICS_NAMESPACE = "UploadLedger"
METRIC_FILES_RECORDED = "FilesRecorded"
METRIC_RECORD_FAILURES = "RecordFailures"
METRIC_DUPLICATES_SKIPPED = "DuplicatesSkipped"
METRIC_STALE_EVENTS_SKIPPED = "StaleEventsSkipped"
METRICS_STAGE_DIMENSION = "stage"
# Powertools Metrics adds this dimension, valued with the service name, to every metric.
METRICS_SERVICE_DIMENSION = "service"

# Reserved ledger keys: real uploads never start with these prefixes.
# The pre-traffic hook's synthetic upload; the hook may only touch these items.
HEALTHCHECK_KEY_PREFIX = "__healthcheck__/"
# The post-deploy smoke test uploads under this prefix only; its role may touch nothing else.
SMOKE_TEST_PREFIX = "smoke-tests/"
# How long the smoke test waits for its ledger item (its default, and the pipeline's value).
SMOKE_TEST_TIMEOUT_SECONDS = 120

# Environment variables of the pre-traffic hook (the ServiceStack sets them).
HOOK_ENV_TARGET_VERSION_ARN = "TARGET_VERSION_ARN"
HOOK_ENV_TABLE_NAME = TABLE_NAME_ENV
HOOK_ENV_BUCKET_NAME = "HEALTHCHECK_BUCKET_NAME"
HOOK_ENV_KEY_PREFIX = "HEALTHCHECK_KEY_PREFIX"

# Environment variables of the smoke test (the pipeline's post-deploy step sets them).
SMOKE_TEST_ENV_BUCKET_NAME = "BUCKET_NAME"
SMOKE_TEST_ENV_TABLE_NAME = TABLE_NAME_ENV
SMOKE_TEST_ENV_ROLE_ARN = "SMOKE_TEST_ROLE_ARN"

# CloudFormation output keys of the ServiceStack: the smoke test and the pipeline read these.
OUTPUT_BUCKET_NAME = "BucketName"
OUTPUT_TABLE_NAME = "TableName"
OUTPUT_FUNCTION_ARN = "FunctionArn"
OUTPUT_ALIAS_ARN = "AliasArn"
OUTPUT_FAILURE_QUEUE_URL = "FailureQueueUrl"
OUTPUT_ALARM_TOPIC_ARN = "AlarmTopicArn"
OUTPUT_SMOKE_TEST_ROLE_ARN = "SmokeTestRoleArn"
OUTPUT_DEPLOYMENT_APPLICATION_NAME = "DeploymentApplicationName"
OUTPUT_DEPLOYMENT_GROUP_NAME = "DeploymentGroupName"
OUTPUT_PRE_TRAFFIC_HOOK_NAME = "PreTrafficHookName"

# Alarms. Names are `upload-ledger-<stage>-<what>`, so two stages in one account never
# collide; each `<what>` has its runbook at runbooks/<what>.md (a test keeps both in step).
# The alarms themselves, one row each, are the catalogue in service/alarms.py.
RUNBOOKS_DIR = "runbooks"
RUNBOOK_URL_TEMPLATE = (
    "https://github.com/{repository}/blob/{branch}/" + RUNBOOKS_DIR + "/{name}.md"
)
DEPLOYMENT_ROLLED_BACK_RUNBOOK = "deployment-rolled-back"

# S3 event notifications: the document S3 sends and the handler reads (message structure
# version 2.1, Amazon S3 User Guide, "Event message structure").
S3_EVENT_SOURCE = "aws:s3"
S3_TEST_EVENT = "s3:TestEvent"
S3_OBJECT_CREATED_PUT = "ObjectCreated:Put"
# S3's ETag of an empty object (its MD5).
EMPTY_OBJECT_ETAG = "d41d8cd98f00b204e9800998ecf8427e"

# Monitoring: one dashboard per stage. Runbooks name it, so the name is part of the contract.
DASHBOARD_NAME_FORMAT = SERVICE_NAME + "-{stage}"


def alarm_name(stage_name: str, what: str) -> str:
    """The CloudWatch alarm name of alarm `what` (a catalogue row) in stage `stage_name`."""
    return f"{SERVICE_NAME}-{stage_name}-{what}"


def stage_stack_prefix(stage_name: str) -> str:
    """The stage's construct id (and its stacks' name prefix), e.g. `UploadLedger-dev`."""
    return f"{STACK_PREFIX}-{stage_name}"


def smoke_test_role_name(stage_name: str, region: str) -> str:
    """The stage's smoke-test role: named, so the pipeline can allow assuming exactly it."""
    return f"{stage_stack_prefix(stage_name)}-{region}-smoke-test"


def smoke_test_runner_role_name(stage_name: str, region: str) -> str:
    """The pipeline's smoke-test CodeBuild role for a stage: named, so the stage's
    smoke-test role can trust exactly it (at most 62 characters: IAM allows 64)."""
    return f"{stage_stack_prefix(stage_name)}-{region}-smoke-runner"


def s3_event_time(moment: datetime | None = None) -> str:
    """`moment` (default: now) as S3 writes `eventTime`: UTC, milliseconds, `Z`."""
    return (moment or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def s3_object_created_record(
    bucket: str,
    key: str,
    *,
    size: Any = 0,
    etag: str = EMPTY_OBJECT_ETAG,
    sequencer: str | None = None,
    version_id: str | None = None,
    event_time: str | None = None,
    event_name: str = S3_OBJECT_CREATED_PUT,
    region: str | None = None,
    encode: bool = True,
    partition: str = "aws",
) -> dict[str, Any]:
    """One ObjectCreated record shaped like S3's own document.

    `partition` is the bucket's AWS partition (`aws`, `aws-cn`, `aws-eusc`...), for its ARN.

    The key is URL-encoded as S3 encodes it (`quote_plus`, `/` kept) unless `encode` is
    false (a test handing over an already encoded key). `sequencer` and `version_id` are
    left out when None, as S3 leaves them out (no versioning, or an emulator that has no
    sequencers). `size` is whatever the caller puts there: tests send malformed ones.
    """
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/") if encode else key,
        "size": size,
        "eTag": etag,
    }
    if version_id is not None:
        obj["versionId"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": S3_EVENT_SOURCE,
        "eventTime": event_time or s3_event_time(),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": SERVICE_NAME,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:{partition}:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    if region is not None:
        record["awsRegion"] = region
    return record


def s3_notification(*records: dict[str, Any]) -> dict[str, Any]:
    """The notification S3 sends to a function: its `records` under `Records`."""
    return {"Records": list(records)}
