"""Fixtures for the handler's unit tests: fake AWS, a moto ledger table, S3 events."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

TABLE_NAME = "ledger-test"
REGION = "eu-central-1"
SERVICE_NAME = "upload-ledger-test"
NAMESPACE = "UploadLedgerTest"
STAGE_NAME = "test"
BUCKET = "uploads-bucket"
REQUEST_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and the handler's settings; nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("STAGE_NAME", STAGE_NAME)


@pytest.fixture
def ledger_table(aws_environment: None) -> Iterator[Any]:
    """The ledger table (PK ``filename``, on demand) inside moto; yields the boto3 Table."""
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        table = dynamodb.create_table(
            TableName=TABLE_NAME,
            KeySchema=[{"AttributeName": "filename", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "filename", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield table


def _forget_powertools_logger() -> None:
    # Powertools configures a service's logger once per process; dropping the stdlib
    # logger makes each import a true cold start instead of reusing the last test's one.
    logging.Logger.manager.loggerDict.pop(SERVICE_NAME, None)


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Everything printed since the last call (JSON logs and EMF), one dict per line."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def follow_captured_stdout(app: ModuleType) -> None:
    """Point the handler's log stream at the current ``sys.stdout``.

    The logger binds to ``sys.stdout`` at import (fixture set-up), and pytest gives the
    test call its own capture stream; call this at the start of a test that reads logs.
    """
    app.logger.registered_handler.setStream(sys.stdout)


@pytest.fixture
def app(ledger_table: Any) -> ModuleType:
    """``handler.app`` imported afresh inside the mock, as a cold start would build it."""
    _forget_powertools_logger()
    sys.modules.pop("handler.app", None)
    return importlib.import_module("handler.app")


@dataclass(frozen=True)
class FakeLambdaContext:
    """What Powertools' ``inject_lambda_context`` reads from the real context."""

    function_name: str = "upload-ledger-handler"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:eu-central-1:123456789012:function:upload-ledger-handler:live"
    )
    aws_request_id: str = REQUEST_ID


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def s3_record(
    key: str,
    *,
    bucket: str = BUCKET,
    size: Any = 1024,
    etag: str = "d41d8cd98f00b204e9800998ecf8427e",
    sequencer: str | None = "0055AED6DCD90281E5",
    version_id: str | None = "096fKKXTRTtl3on89fVO.nfljtsv6qko",
    event_time: str = "2024-05-01T12:00:00.000Z",
    event_name: str = "ObjectCreated:Put",
    encode: bool = True,
) -> dict[str, Any]:
    """One record shaped like S3's own document; the key is encoded as S3 does (quote_plus)."""
    obj: dict[str, Any] = {
        "key": quote_plus(key) if encode else key,
        "size": size,
        "eTag": etag,
    }
    if version_id is not None:
        obj["versionId"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ledger",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    """An S3 notification carrying ``records``."""
    return {"Records": list(records)}


def stored(table: Any, key: str) -> dict[str, Any] | None:
    """The ledger item for ``key``, or None."""
    item: dict[str, Any] | None = table.get_item(Key={"filename": key}, ConsistentRead=True).get(
        "Item"
    )
    return item
