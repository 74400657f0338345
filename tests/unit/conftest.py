"""Fixtures for the handler's unit tests: fake AWS, a moto ledger table, S3 events."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

import contract
from local_aws import FAKE_CREDENTIALS, FakeLambdaContext, create_ledger_table

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
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv(contract.TABLE_NAME_ENV, TABLE_NAME)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv(contract.POWERTOOLS_SERVICE_NAME_ENV, SERVICE_NAME)
    monkeypatch.setenv(contract.POWERTOOLS_METRICS_NAMESPACE_ENV, NAMESPACE)
    monkeypatch.setenv(contract.STAGE_NAME_ENV, STAGE_NAME)


@pytest.fixture
def ledger_table(aws_environment: None) -> Iterator[Any]:
    """The ledger table (PK ``filename``, on demand) inside moto; yields the boto3 Table."""
    with mock_aws():
        create_ledger_table(boto3.client("dynamodb", region_name=REGION), TABLE_NAME)
        yield boto3.resource("dynamodb", region_name=REGION).Table(TABLE_NAME)


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


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(aws_request_id=REQUEST_ID)


def s3_record(
    key: str,
    *,
    bucket: str = BUCKET,
    size: Any = 1024,
    sequencer: str | None = "0055AED6DCD90281E5",
    version_id: str | None = "096fKKXTRTtl3on89fVO.nfljtsv6qko",
    event_time: str = "2024-05-01T12:00:00.000Z",
    **fields: Any,
) -> dict[str, Any]:
    """One record shaped like S3's own document (contract.py), with fixed test values;
    `fields` are the builder's other options (etag, event_name, encode)."""
    return contract.s3_object_created_record(
        bucket,
        key,
        size=size,
        sequencer=sequencer,
        version_id=version_id,
        event_time=event_time,
        region=REGION,
        **fields,
    )


s3_event = contract.s3_notification


def stored(table: Any, key: str) -> dict[str, Any] | None:
    """The ledger item for ``key``, or None."""
    item: dict[str, Any] | None = table.get_item(
        Key={contract.PARTITION_KEY: key}, ConsistentRead=True
    ).get("Item")
    return item
