"""Data access: the ledger table, one conditional ``put_item`` per record."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from handler.ledger import LedgerEntry, LedgerWriteError, WriteOutcome

PARTITION_KEY = "filename"
ORDER_ATTRIBUTE = "sequencer_order"
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Atomic: a write happens only if the key is new or the stored event is strictly older.
_CONDITION = "attribute_not_exists(#pk) OR #order < :order"


class LedgerRepository:
    """Writes ledger items, never letting an older or repeated event overwrite a newer one.

    Items carry the contract's attributes plus ``sequencer_order``, the internal
    ordering value described in :mod:`handler.ledger`.
    """

    def __init__(self, client: Any, table_name: str) -> None:
        """``client`` is a boto3 DynamoDB client, built once per execution environment."""
        self._client = client
        self._table_name = table_name

    def put_if_newer(self, entry: LedgerEntry) -> WriteOutcome:
        """Write ``entry`` unless an equal (duplicate) or newer (stale) event is stored."""
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=to_item(entry),
                ConditionExpression=_CONDITION,
                ExpressionAttributeNames={"#pk": PARTITION_KEY, "#order": ORDER_ATTRIBUTE},
                ExpressionAttributeValues={":order": {"S": entry.order}},
                # The stored item comes back with the failure: duplicate vs stale, no extra read.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return _skipped_outcome(entry, error.response.get("Item"))
            raise LedgerWriteError(f"DynamoDB put_item failed: {error}") from error
        except BotoCoreError as error:
            raise LedgerWriteError(f"DynamoDB put_item failed: {error}") from error
        return WriteOutcome.WRITTEN


def _skipped_outcome(entry: LedgerEntry, stored: dict[str, Any] | None) -> WriteOutcome:
    stored_order = (stored or {}).get(ORDER_ATTRIBUTE, {}).get("S")
    if stored_order is not None and stored_order > entry.order:
        return WriteOutcome.STALE
    return WriteOutcome.DUPLICATE


def to_item(entry: LedgerEntry) -> dict[str, dict[str, str]]:
    """The DynamoDB item (low-level attribute values) for ``entry``."""
    item = {
        PARTITION_KEY: {"S": entry.filename},
        "bucket": {"S": entry.bucket},
        "size": {"N": str(entry.size)},
        "etag": {"S": entry.etag},
        "event_time": {"S": entry.event_time},
        "event_name": {"S": entry.event_name},
        ORDER_ATTRIBUTE: {"S": entry.order},
    }
    if entry.version_id is not None:
        item["version_id"] = {"S": entry.version_id}
    if entry.sequencer is not None:
        item["sequencer"] = {"S": entry.sequencer}
    return item
