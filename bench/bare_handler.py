"""The baseline: one ``put_item`` per record, no logging, metrics, tracing or checks.

Built like the real handler (one client at import, endpoint from boto3 itself, botocore's
client-side parameter validation off as the handler has it), so the difference between
the two is what observability, record validation and ordering cost, not a client setting.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.config import Config

import contract

TABLE_NAME = os.environ[contract.TABLE_NAME_ENV]
client = boto3.client("dynamodb", config=Config(parameter_validation=False))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Write each record's decoded key."""
    for record in event["Records"]:
        key = unquote_plus(record["s3"]["object"]["key"])
        client.put_item(TableName=TABLE_NAME, Item={contract.PARTITION_KEY: {"S": key}})
    return {"recorded": len(event["Records"])}
