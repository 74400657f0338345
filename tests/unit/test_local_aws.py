"""The stand-ins for AWS that the tests and the benchmark share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

import contract
from local_aws import FAKE_CREDENTIALS, create_ledger_table, moto_server

TCP_LISTEN = "0A"  # the state column of /proc/net/tcp (include/net/tcp_states.h)


def _dynamodb(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-central-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _listening_sockets_of_this_process(port: int) -> set[int]:
    """Inodes of this process's sockets listening on 127.0.0.1:`port` (Linux's socket table).

    Why not bind the port again to see it free: werkzeug answers every request with
    "Connection: close", and whichever side closes first keeps the connection in TIME-WAIT
    for a minute; when the server wins that race (as under a loaded xdist run), the
    server's port is in TIME-WAIT and a plain bind() fails with "Address already in use"
    though nothing listens. And any other process (another xdist worker) may take the port
    the moment it is free. The kernel's table of this process's own sockets answers the
    question itself, whatever other sockets or processes do.
    """
    own = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # closed since listed (the directory's own fd, ...)
            continue
        if link.startswith("socket:["):
            own.add(int(link[len("socket:[") : -1]))
    listening = set()
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == TCP_LISTEN:
            listening.add(int(fields[9]))
    return listening & own


@pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table in /proc/net/tcp"
)
def test_moto_server_serves_and_then_releases_its_port() -> None:
    with moto_server() as endpoint:
        client = _dynamodb(endpoint)
        create_ledger_table(client, "released-port")
        assert "released-port" in client.list_tables()["TableNames"]
        port = urlsplit(endpoint).port or 0
        assert _listening_sockets_of_this_process(port)  # the check sees a live listener
    # Closed, not just shut down: neither the listening socket nor werkzeug's duplicate of
    # it is left open in this process.
    assert not _listening_sockets_of_this_process(port)


def test_ledger_table_is_keyed_by_the_contracts_partition_key_on_demand() -> None:
    with moto_server() as endpoint:
        client = _dynamodb(endpoint)
        create_ledger_table(client, "ledger")
        table = client.describe_table(TableName="ledger")["Table"]
    assert table["KeySchema"] == [{"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
