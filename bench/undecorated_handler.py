"""The handler's own logic and conditional write, without Powertools: no logs, metrics, traces.

Between the bare baseline and the real handler, it splits their difference in two: what
validation, ordering and the conditional put cost, and what observability costs.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

import contract
from handler.ledger import process_records
from handler.repository import LedgerRepository

# The client as the real handler builds it (validation off): only Powertools differs.
client = boto3.client("dynamodb", config=Config(parameter_validation=False))
repository = LedgerRepository(client, os.environ[contract.TABLE_NAME_ENV])


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Record every record of the notification, as the real handler does."""
    return process_records(event["Records"], repository).summary()
