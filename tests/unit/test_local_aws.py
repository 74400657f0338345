"""The stand-ins for AWS that the tests and the benchmark share."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import boto3

import contract
from local_aws import FAKE_CREDENTIALS, create_ledger_table, moto_server


def _dynamodb(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-central-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def test_moto_server_serves_and_then_releases_its_port() -> None:
    with moto_server() as endpoint:
        client = _dynamodb(endpoint)
        create_ledger_table(client, "released-port")
        assert "released-port" in client.list_tables()["TableNames"]
        address = urlsplit(endpoint)
    # Closed, not just shut down: binding the same port again would fail with "Address
    # already in use" while the listening socket stayed open.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address.hostname or "", address.port or 0))


def test_ledger_table_is_keyed_by_the_contracts_partition_key_on_demand() -> None:
    with moto_server() as endpoint:
        client = _dynamodb(endpoint)
        create_ledger_table(client, "ledger")
        table = client.describe_table(TableName="ledger")["Table"]
    assert table["KeySchema"] == [{"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
