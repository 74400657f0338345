"""Data access: the ledger table, one conditional ``put_item`` per record."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

import contract
from handler.ledger import (
    ORDER_VALUE_RANGES,
    LedgerEntry,
    LedgerWriteError,
    WriteOutcome,
    is_usable_order,
)

PARTITION_KEY = contract.PARTITION_KEY
ORDER_ATTRIBUTE = contract.ORDER_ATTRIBUTE
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Atomic: a write happens if the key is new, if the stored item has no usable ordering
# value (a backfill, the original demo's schema, an item written by hand: older than any
# event), or if the stored event is strictly older. So DynamoDB refuses exactly when the
# stored value is a string in one of ORDER_VALUE_RANGES and not smaller than the event's.
# The condition says that directly, "NOT (a string AND in a range, at or above :order)",
# rather than "not usable OR #order < :order": in DynamoDB a comparison with a missing
# attribute, or one of another type, is false, so the type check stays; and since the
# event's own value lies in a range, only the ranges that reach it or lie above it can
# refuse. A sequenced event (every S3 event in AWS) then needs three values instead of
# seven, ~7 us less of botocore's CPU per record (`make bench`, instruction counts).
# Source: DynamoDB developer guide, "Comparison operator and function reference".
_STRING_TYPE = {":string": {"S": "S"}}  # attribute_type's name for the string type


def _condition(order: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The condition expression and its values for writing an event whose value is ``order``.

    ``order`` is one of :func:`handler.ledger.order_value`'s values, so it lies in a range.
    """
    clauses: list[str] = []
    values: dict[str, dict[str, str]] = {":order": {"S": order}, **_STRING_TYPE}
    for index, (lowest, highest) in enumerate(ORDER_VALUE_RANGES):
        if highest < order:
            continue  # wholly below the event: never a reason to refuse
        values[f":highest{index}"] = {"S": highest}
        if lowest <= order:
            clauses.append(f"#order BETWEEN :order AND :highest{index}")
        else:
            values[f":lowest{index}"] = {"S": lowest}
            clauses.append(f"#order BETWEEN :lowest{index} AND :highest{index}")
    refuse = " OR ".join(clauses)
    return (
        f"attribute_not_exists(#pk) OR NOT (attribute_type(#order, :string) AND ({refuse}))",
        values,
    )


def put_request(table_name: str, entry: LedgerEntry) -> dict[str, Any]:
    """The PutItem parameters (boto3's ``put_item`` keyword arguments) that write ``entry``
    into ``table_name`` unless an equal or newer event is stored.

    Public so that the benchmark serializes exactly what the handler sends (bench/serializer.py).
    """
    condition, values = _condition(entry.order)
    return {
        "TableName": table_name,
        "Item": to_item(entry),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#order": ORDER_ATTRIBUTE},
        "ExpressionAttributeValues": values,
        # The stored item comes back with the failure: duplicate vs stale, no extra read.
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


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
            self._client.put_item(**put_request(self._table_name, entry))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return _skipped_outcome(entry, error)
            raise LedgerWriteError(
                f"DynamoDB put_item failed: {error}", **_answer(error)
            ) from error
        except BotoCoreError as error:
            raise LedgerWriteError(f"DynamoDB put_item failed: {error}") from error
        return WriteOutcome.WRITTEN


def _answer(error: ClientError) -> dict[str, Any]:
    """DynamoDB's request id and HTTP status from a refused request, for the error report."""
    metadata = error.response.get("ResponseMetadata", {})
    return {"request_id": metadata.get("RequestId"), "status_code": metadata.get("HTTPStatusCode")}


def _skipped_outcome(entry: LedgerEntry, refusal: ClientError) -> WriteOutcome:
    """Duplicate or stale, only from the stored value the condition really compared.

    Raises :class:`LedgerWriteError` when the refusal cannot be explained by that value
    (no item returned, or one without a usable ordering value, which the condition
    accepts): the record then fails and is retried rather than silently called a skip.
    """
    stored = refusal.response.get("Item")
    stored_order = (stored or {}).get(ORDER_ATTRIBUTE, {}).get("S")
    if isinstance(stored_order, str) and is_usable_order(stored_order):
        if stored_order == entry.order:
            return WriteOutcome.DUPLICATE
        if stored_order > entry.order:
            return WriteOutcome.STALE
    raise LedgerWriteError(
        f"DynamoDB refused the conditional write, but the stored {ORDER_ATTRIBUTE} "
        f"({stored_order!r}) is not an equal or newer event than {entry.order!r}",
        **_answer(refusal),
    )


def to_item(entry: LedgerEntry) -> dict[str, dict[str, str]]:
    """The DynamoDB item (low-level attribute values) for ``entry``."""
    item = {
        PARTITION_KEY: {"S": entry.filename},
        contract.ATTR_BUCKET: {"S": entry.bucket},
        contract.ATTR_SIZE: {"N": str(entry.size)},
        contract.ATTR_ETAG: {"S": entry.etag},
        contract.ATTR_EVENT_TIME: {"S": entry.event_time},
        contract.ATTR_EVENT_NAME: {"S": entry.event_name},
        ORDER_ATTRIBUTE: {"S": entry.order},
    }
    if entry.version_id is not None:
        item[contract.ATTR_VERSION_ID] = {"S": entry.version_id}
    if entry.sequencer is not None:
        item[contract.ATTR_SEQUENCER] = {"S": entry.sequencer}
    return item
