"""The pre-traffic hook decides whether a new version may take traffic, and says so to CodeDeploy.

DynamoDB is moto. Lambda and CodeDeploy are botocore Stubbers: moto's Lambda invoke needs
Docker (not available here), and a Stubber lets us pin the exact CodeDeploy call. Where the
new version "runs", a hook on the stubbed Invoke call writes the ledger item the way the
handler's contract says it does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

import contract
from hooks import pre_traffic
from hooks.pre_traffic import Clients, Settings
from local_aws import create_ledger_table

REGION = "eu-central-1"
VERSION_ARN = "arn:aws:lambda:eu-central-1:111111111111:function:ledger:7"
DEPLOYMENT_ID = "d-EXAMPLE01"
HOOK_EXECUTION_ID = "hook-execution-0001"
SETTINGS = Settings(
    target_version_arn=VERSION_ARN,
    table_name="ledger",
    bucket_name="uploads-example",
    key_prefix=contract.HEALTHCHECK_KEY_PREFIX,
)
HEALTHCHECK_KEY = f"{contract.HEALTHCHECK_KEY_PREFIX}{DEPLOYMENT_ID}"
CODEDEPLOY_EVENT = {
    "DeploymentId": DEPLOYMENT_ID,
    "LifecycleEventHookExecutionId": HOOK_EXECUTION_ID,
}


class Aws:
    """moto DynamoDB with the ledger table; stubbed Lambda and CodeDeploy clients."""

    def __init__(self) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(self.dynamodb, SETTINGS.table_name)
        self.lambda_ = boto3.client("lambda", region_name=REGION)
        self.codedeploy = boto3.client("codedeploy", region_name=REGION)
        self.lambda_stub = Stubber(self.lambda_)
        self.codedeploy_stub = Stubber(self.codedeploy)
        self.clients = Clients(self.lambda_, self.dynamodb, self.codedeploy)

    def new_version_records_uploads(self) -> None:
        """The stubbed Invoke behaves like a healthy version: it writes the ledger item."""

        def record(params: dict[str, Any], **_: Any) -> None:
            (s3_record,) = json.loads(params["Payload"])["Records"]
            obj = s3_record["s3"]["object"]
            self.dynamodb.put_item(
                TableName=SETTINGS.table_name,
                Item={
                    contract.PARTITION_KEY: {"S": unquote_plus(obj["key"])},
                    "bucket": {"S": s3_record["s3"]["bucket"]["name"]},
                    "sequencer": {"S": obj["sequencer"]},
                },
            )

        self.lambda_.meta.events.register("provide-client-params.lambda.Invoke", record)

    def invoke_returns(self, payload: dict[str, Any], function_error: str | None = None) -> None:
        body = json.dumps(payload).encode()
        response: dict[str, Any] = {
            "StatusCode": 200,
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
        }
        if function_error:
            response["FunctionError"] = function_error
        self.lambda_stub.add_response(
            "invoke",
            response,
            {"FunctionName": VERSION_ARN, "InvocationType": "RequestResponse", "Payload": ANY},
        )

    def expect_report(self, status: str) -> None:
        self.codedeploy_stub.add_response(
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": HOOK_EXECUTION_ID},
            {
                "deploymentId": DEPLOYMENT_ID,
                "lifecycleEventHookExecutionId": HOOK_EXECUTION_ID,
                "status": status,
            },
        )

    def healthcheck_item(self) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=SETTINGS.table_name, Key={contract.PARTITION_KEY: {"S": HEALTHCHECK_KEY}}
        ).get("Item")
        return item


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        fakes = Aws()
        with fakes.lambda_stub, fakes.codedeploy_stub:
            yield fakes
            # Every stubbed call the test set up was made.
            fakes.lambda_stub.assert_no_pending_responses()
            fakes.codedeploy_stub.assert_no_pending_responses()


def test_healthy_version_passes_and_leaves_no_healthcheck_item(aws: Aws) -> None:
    aws.new_version_records_uploads()
    aws.invoke_returns({"recorded": 1, "skipped": 0})
    aws.expect_report(pre_traffic.SUCCEEDED)

    outcome = pre_traffic.handle(CODEDEPLOY_EVENT, aws.clients, SETTINGS)

    assert outcome == {"status": pre_traffic.SUCCEEDED}
    assert aws.healthcheck_item() is None


def test_version_whose_invocation_fails_is_reported_failed(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.invoke_returns(
        {"errorType": "BatchFailedError", "errorMessage": "1 record could not be recorded"},
        function_error="Unhandled",
    )
    aws.expect_report(pre_traffic.FAILED)

    outcome = pre_traffic.handle(CODEDEPLOY_EVENT, aws.clients, SETTINGS)

    assert outcome == {"status": pre_traffic.FAILED}
    failure = _log_lines(capsys, "Pre-traffic check failed")
    assert "BatchFailedError" in failure[0]["reason"]
    assert failure[0]["deployment_id"] == DEPLOYMENT_ID


def test_version_that_returns_without_writing_the_item_is_reported_failed(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.invoke_returns({"recorded": 1, "skipped": 0})  # claims success, writes nothing
    aws.expect_report(pre_traffic.FAILED)

    outcome = pre_traffic.handle(CODEDEPLOY_EVENT, aws.clients, SETTINGS)

    assert outcome == {"status": pre_traffic.FAILED}
    (failure,) = _log_lines(capsys, "Pre-traffic check failed")
    assert "no ledger item" in failure["reason"]


def test_item_left_by_an_earlier_attempt_does_not_count_as_this_write(aws: Aws) -> None:
    aws.dynamodb.put_item(
        TableName=SETTINGS.table_name,
        Item={contract.PARTITION_KEY: {"S": HEALTHCHECK_KEY}, "sequencer": {"S": "00"}},
    )
    aws.invoke_returns({"recorded": 0, "skipped": 1})
    aws.expect_report(pre_traffic.FAILED)

    outcome = pre_traffic.handle(CODEDEPLOY_EVENT, aws.clients, SETTINGS)

    assert outcome == {"status": pre_traffic.FAILED}
    assert aws.healthcheck_item() is None, "the stale item is cleaned up too"


def test_lambda_refusing_the_invoke_fails_closed(aws: Aws) -> None:
    aws.lambda_stub.add_client_error("invoke", "AccessDeniedException", http_status_code=403)
    aws.expect_report(pre_traffic.FAILED)

    outcome = pre_traffic.handle(CODEDEPLOY_EVENT, aws.clients, SETTINGS)

    assert outcome == {"status": pre_traffic.FAILED}


def test_codedeploy_report_error_is_logged_and_raised(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.new_version_records_uploads()
    aws.invoke_returns({"recorded": 1, "skipped": 0})
    aws.codedeploy_stub.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        "LifecycleEventAlreadyCompletedException",
        "already completed",
    )

    with pytest.raises(ClientError, match="LifecycleEventAlreadyCompletedException"):
        pre_traffic.handle(CODEDEPLOY_EVENT, aws.clients, SETTINGS)

    (logged,) = _log_lines(capsys, "Could not report to CodeDeploy")
    assert logged["status"] == pre_traffic.SUCCEEDED
    assert logged["level"] == "ERROR"


def test_synthetic_event_is_an_s3_object_created_record_for_the_reserved_key() -> None:
    event = pre_traffic.synthetic_s3_event("uploads-example", "__healthcheck__/d-A B", "0A1B")

    (record,) = event["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == "uploads-example"
    # Encoded the way S3 encodes keys; the handler decodes it back.
    assert record["s3"]["object"]["key"] == "__healthcheck__/d-A+B"
    assert unquote_plus(record["s3"]["object"]["key"]) == "__healthcheck__/d-A B"
    assert record["s3"]["object"]["sequencer"] == "0A1B"


def test_synthetic_events_bucket_arn_is_in_the_functions_partition() -> None:
    event = pre_traffic.synthetic_s3_event("uploads", "k", "0A", partition="aws-cn")
    assert event["Records"][0]["s3"]["bucket"]["arn"] == "arn:aws-cn:s3:::uploads"


def test_settings_come_from_the_environment_the_stack_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(contract.HOOK_ENV_TARGET_VERSION_ARN, VERSION_ARN)
    monkeypatch.setenv(contract.HOOK_ENV_TABLE_NAME, "ledger")
    monkeypatch.setenv(contract.HOOK_ENV_BUCKET_NAME, "uploads-example")
    monkeypatch.setenv(contract.HOOK_ENV_KEY_PREFIX, contract.HEALTHCHECK_KEY_PREFIX)

    assert Settings.from_env() == SETTINGS


def _log_lines(capsys: pytest.CaptureFixture[str], message: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if line["message"] == message]
