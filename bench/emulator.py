"""The embedded DynamoDB endpoint: a moto server with the benchmark's ledger table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3

from bench.settings import REGION, TABLE_NAME
from local_aws import FAKE_CREDENTIALS, create_ledger_table, moto_server


def create_bench_table(endpoint: str) -> None:
    """The benchmark's ledger table, in the DynamoDB at ``endpoint``."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    create_ledger_table(client, TABLE_NAME)


@contextmanager
def dynamodb_endpoint() -> Iterator[str]:
    """A running moto server with the ledger table; yields its endpoint URL."""
    with moto_server() as endpoint:
        create_bench_table(endpoint)
        yield endpoint
