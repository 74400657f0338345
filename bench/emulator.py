"""The embedded DynamoDB endpoint: a moto server on a free local port, with the ledger table."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

import contract
from bench.settings import REGION, TABLE_NAME

HOST = "127.0.0.1"
# Fake credentials: the emulator accepts anything, and nothing can reach a real account.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def create_ledger_table(endpoint: str) -> None:
    """The ledger table as the ServiceStack makes it: PK ``filename`` (S), on demand."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_table(
        TableName=TABLE_NAME,
        KeySchema=[{"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": contract.PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@contextmanager
def dynamodb_endpoint() -> Iterator[str]:
    """A running moto server with the ledger table; yields its endpoint URL."""
    # The server's per-request access log would cost more time than some handlers do.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://{HOST}:{port}"
        create_ledger_table(endpoint)
        yield endpoint
    finally:
        server.stop()
