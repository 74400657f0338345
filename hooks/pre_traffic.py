"""CodeDeploy pre-traffic hook: prove the NEW ledger version records an upload.

CodeDeploy calls this before the `live` alias sends any traffic to the new version. It
invokes that version directly with a synthetic S3 ObjectCreated event for a reserved
health-check key, reads the ledger item back, deletes it, and reports Succeeded or Failed.
That gates every release, even when nobody uploads during the 5-minute canary.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import boto3

import contract

SUCCEEDED = "Succeeded"
FAILED = "Failed"


class HealthCheckFailedError(Exception):
    """The new version did not record the synthetic upload as the contract requires."""


@dataclass(frozen=True)
class Settings:
    """What the hook checks, from the environment the ServiceStack sets."""

    target_version_arn: str
    table_name: str
    bucket_name: str
    key_prefix: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            target_version_arn=os.environ[contract.HOOK_ENV_TARGET_VERSION_ARN],
            table_name=os.environ[contract.HOOK_ENV_TABLE_NAME],
            bucket_name=os.environ[contract.HOOK_ENV_BUCKET_NAME],
            key_prefix=os.environ[contract.HOOK_ENV_KEY_PREFIX],
        )


@dataclass(frozen=True)
class Clients:
    lambda_: Any
    dynamodb: Any
    codedeploy: Any

    @classmethod
    def from_boto3(cls) -> Clients:
        return cls(boto3.client("lambda"), boto3.client("dynamodb"), boto3.client("codedeploy"))


# Built once per execution environment; boto3 finds region and endpoint itself.
CLIENTS = Clients.from_boto3()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return handle(event, CLIENTS, Settings.from_env())


def handle(event: dict[str, Any], clients: Clients, settings: Settings) -> dict[str, str]:
    """Check the new version, then tell CodeDeploy the outcome."""
    deployment_id = event["DeploymentId"]
    hook_execution_id = event["LifecycleEventHookExecutionId"]
    status = SUCCEEDED
    try:
        check_new_version(deployment_id, clients, settings)
    except Exception as error:
        # A check that could not run proves nothing: fail closed, never pass by default.
        status = FAILED
        _log("error", "Pre-traffic check failed", deployment_id, reason=str(error))
    report(clients, deployment_id, hook_execution_id, status)
    return {"status": status}


def check_new_version(deployment_id: str, clients: Clients, settings: Settings) -> None:
    """Invoke the new version with a synthetic upload and read its ledger item back."""
    key = f"{settings.key_prefix}{deployment_id}"
    sequencer = f"{time.time_ns():020X}"
    try:
        # The partition of the function's own ARN (arn:aws-cn:lambda:...), for the bucket's ARN.
        partition = settings.target_version_arn.split(":")[1]
        event = synthetic_s3_event(settings.bucket_name, key, sequencer, partition=partition)
        _invoke(clients, settings, event)
        item = clients.dynamodb.get_item(
            TableName=settings.table_name,
            Key={contract.PARTITION_KEY: {"S": key}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            raise HealthCheckFailedError(f"no ledger item for {key!r} after a successful invoke")
        recorded = item.get(contract.ATTR_SEQUENCER, {}).get("S")
        if recorded != sequencer:
            raise HealthCheckFailedError(
                f"ledger item for {key!r} has sequencer {recorded!r}, expected {sequencer!r}"
            )
        _log("info", "New version recorded the health-check upload", deployment_id, key=key)
    finally:
        _clean_up(clients, settings, key, deployment_id)


def _invoke(clients: Clients, settings: Settings, event: dict[str, Any]) -> None:
    response = clients.lambda_.invoke(
        FunctionName=settings.target_version_arn,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode(),
    )
    payload = response["Payload"].read().decode(errors="replace")
    if "FunctionError" in response:
        raise HealthCheckFailedError(
            f"{settings.target_version_arn} failed ({response['FunctionError']}): {payload[:500]}"
        )


def _clean_up(clients: Clients, settings: Settings, key: str, deployment_id: str) -> None:
    # A leftover health-check item is harmless (reserved prefix) and must not decide the
    # release, so a failed delete is logged, not raised.
    try:
        clients.dynamodb.delete_item(
            TableName=settings.table_name, Key={contract.PARTITION_KEY: {"S": key}}
        )
    except Exception as error:  # cleanup is best effort
        _log(
            "warning",
            "Could not delete the health-check item",
            deployment_id,
            key=key,
            reason=str(error),
        )


def report(clients: Clients, deployment_id: str, hook_execution_id: str, status: str) -> None:
    """Tell CodeDeploy; if that fails, log and re-raise.

    Raising makes Lambda retry this asynchronous invocation; if no report ever arrives,
    CodeDeploy times the hook out and fails (and rolls back) the deployment. Swallowing the
    error instead would leave the outcome unreported while looking handled.
    """
    try:
        clients.codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=hook_execution_id,
            status=status,
        )
    except Exception as error:
        _log(
            "error",
            "Could not report to CodeDeploy",
            deployment_id,
            status=status,
            reason=str(error),
        )
        raise
    _log("info", "Reported to CodeDeploy", deployment_id, status=status)


def synthetic_s3_event(
    bucket: str, key: str, sequencer: str, partition: str = "aws"
) -> dict[str, Any]:
    """An S3 ObjectCreated notification as S3 sends it (key URL-encoded, with a sequencer).

    `partition` is the bucket's AWS partition (`aws`, `aws-cn`, `aws-eusc`...).
    """
    return contract.s3_notification(
        contract.s3_object_created_record(
            bucket, key, size=0, sequencer=sequencer, partition=partition
        )
    )


def _log(level: str, message: str, deployment_id: str, **fields: Any) -> None:
    # One JSON object per line on stdout, which Lambda stores as is: the same shape as the
    # handler's Powertools logs, so the same Logs Insights queries work on both.
    line = {"level": level.upper(), "message": message, "deployment_id": deployment_id, **fields}
    print(json.dumps(line, default=str), flush=True)
