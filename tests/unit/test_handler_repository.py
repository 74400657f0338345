"""The data access layer on its own, against a moto table."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from handler.ledger import (
    ORDER_VALUE_RANGES,
    LedgerEntry,
    LedgerWriteError,
    WriteOutcome,
    is_usable_order,
    order_value,
)
from handler.repository import LedgerRepository, put_request, to_item
from tests.unit.conftest import BUCKET, REGION, TABLE_NAME, stored


def entry(sequencer: str | None = "0A", **changes: Any) -> LedgerEntry:
    base = LedgerEntry(
        filename="file.txt",
        bucket=BUCKET,
        size=7,
        etag="e",
        event_time="2024-05-01T12:00:00.000Z",
        event_name="ObjectCreated:Put",
        order=order_value(sequencer, "2024-05-01T12:00:00.000Z"),
        version_id=None,
        sequencer=sequencer,
    )
    return replace(base, **changes)


@pytest.fixture
def repository(ledger_table: Any) -> LedgerRepository:
    return LedgerRepository(boto3.client("dynamodb", region_name=REGION), TABLE_NAME)


def test_first_write_is_written(repository: LedgerRepository, ledger_table: Any) -> None:
    assert repository.put_if_newer(entry()) is WriteOutcome.WRITTEN
    item = stored(ledger_table, "file.txt")
    assert item is not None
    assert item["size"] == 7


def test_same_order_is_a_duplicate(repository: LedgerRepository) -> None:
    repository.put_if_newer(entry())
    assert repository.put_if_newer(entry(etag="other")) is WriteOutcome.DUPLICATE


def test_smaller_order_is_stale_and_leaves_the_item(
    repository: LedgerRepository, ledger_table: Any
) -> None:
    repository.put_if_newer(entry("0B", etag="new"))
    assert repository.put_if_newer(entry("0A", etag="old")) is WriteOutcome.STALE
    item = stored(ledger_table, "file.txt")
    assert item is not None
    assert item["etag"] == "new"


def test_other_dynamodb_errors_raise_ledger_write_error(ledger_table: Any) -> None:
    client = boto3.client("dynamodb", region_name=REGION)
    missing = LedgerRepository(client, "no-such-table")
    with pytest.raises(LedgerWriteError, match="ResourceNotFoundException") as raised:
        missing.put_if_newer(entry())
    # DynamoDB's answer travels with the error: the request id is what AWS Support asks for.
    assert raised.value.status_code == 400
    assert raised.value.request_id


def test_write_error_without_an_answer_has_no_request_id() -> None:
    class UnreachableClient:
        def put_item(self, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.example")

    with pytest.raises(LedgerWriteError, match="Could not connect") as raised:
        LedgerRepository(UnreachableClient(), TABLE_NAME).put_if_newer(entry())
    assert (raised.value.request_id, raised.value.status_code) == (None, None)


def test_the_write_sends_put_request_as_it_is() -> None:
    # The benchmark serializes put_request's parameters as the handler's PutItem
    # (bench/serializer.py): it measures the real request only while they are one.
    sent: list[dict[str, Any]] = []

    class RecordingClient:
        def put_item(self, **parameters: Any) -> None:
            sent.append(parameters)

    written = entry(version_id="v1")
    LedgerRepository(RecordingClient(), TABLE_NAME).put_if_newer(written)
    assert sent == [put_request(TABLE_NAME, written)]
    assert sent[0]["Item"] == to_item(written)
    assert sent[0]["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_optional_attributes_only_when_present() -> None:
    assert "sequencer" not in to_item(entry(None))
    assert "version_id" not in to_item(entry())
    assert to_item(entry(version_id="v1"))["version_id"] == {"S": "v1"}


@pytest.mark.parametrize(
    "stored_order",
    [
        pytest.param(None, id="missing"),
        pytest.param(Decimal(7), id="a number"),
        pytest.param("", id="empty"),
        pytest.param("zzz", id="above every range"),
        pytest.param("S#ZZ", id="sequenced prefix, not hex"),
        pytest.param("E#", id="unsequenced prefix only"),
        pytest.param("0055AED6DCD90281E5", id="a raw sequencer"),
    ],
)
@pytest.mark.parametrize("sequencer", ["0A", None], ids=["sequenced", "unsequenced"])
def test_stored_item_without_a_usable_order_is_older_than_any_event(
    repository: LedgerRepository, ledger_table: Any, stored_order: Any, sequencer: str | None
) -> None:
    item = {"filename": "file.txt", "bucket": "b", "size": 10, "etag": "old"}
    if stored_order is not None:
        item["sequencer_order"] = stored_order
    ledger_table.put_item(Item=item)
    new = entry(sequencer, etag="new")
    assert repository.put_if_newer(new) is WriteOutcome.WRITTEN
    written = stored(ledger_table, "file.txt")
    assert written is not None
    assert (written["etag"], written["sequencer_order"]) == ("new", new.order)


def test_refusal_unexplained_by_the_stored_item_is_an_error_not_a_skip() -> None:
    # DynamoDB refused, but the item it returned holds no value the condition compared:
    # calling that a duplicate would drop the event silently.
    refused = ClientError(
        {
            "Error": {"Code": "ConditionalCheckFailedException"},
            "Item": {},
            "ResponseMetadata": {"RequestId": "REQ-EXAMPLE", "HTTPStatusCode": 400},
        },
        "PutItem",
    )

    class RefusingClient:
        def put_item(self, **_: Any) -> None:
            raise refused

    with pytest.raises(LedgerWriteError, match="not an equal or newer event") as raised:
        LedgerRepository(RefusingClient(), TABLE_NAME).put_if_newer(entry())
    assert (raised.value.request_id, raised.value.status_code) == ("REQ-EXAMPLE", 400)


UNSEQUENCED_EVENT = order_value(None, "2024-05-01T12:00:00.000Z")
SEQUENCED_EVENT = order_value("0A", "2024-05-01T12:00:00.000Z")
EDGES_OF_THE_RANGES = [value for edges in ORDER_VALUE_RANGES for value in edges]


@pytest.mark.parametrize("event_order", [UNSEQUENCED_EVENT, SEQUENCED_EVENT])
@pytest.mark.parametrize(
    "stored_order",
    [
        *EDGES_OF_THE_RANGES,
        UNSEQUENCED_EVENT,
        SEQUENCED_EVENT,
        order_value(None, "2024-05-01T12:00:00.001Z"),
        order_value(None, "2024-05-01T11:59:59.999Z"),
        order_value("0B", "2024-05-01T12:00:00.000Z"),
        order_value("09", "2024-05-01T12:00:00.000Z"),
        "E#A",  # between the ranges
        "S#G",  # above every range
    ],
)
def test_dynamodb_refuses_exactly_when_a_usable_stored_value_is_not_older(
    repository: LedgerRepository, ledger_table: Any, stored_order: str, event_order: str
) -> None:
    # The rule in Python (handler/ledger.py), checked against the condition DynamoDB runs.
    ledger_table.put_item(Item={"filename": "file.txt", "sequencer_order": stored_order})
    sequencer = "0A" if event_order == SEQUENCED_EVENT else None
    outcome = repository.put_if_newer(entry(sequencer))
    refused = is_usable_order(stored_order) and stored_order >= event_order
    assert (outcome is not WriteOutcome.WRITTEN) == refused
