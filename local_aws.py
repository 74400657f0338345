"""Local stand-ins for AWS that the tests and the benchmark share.

- `moto_server()`: moto in server mode on a free port of 127.0.0.1 (the sandbox's
  emulator), stopped and its port released on exit;
- `FAKE_CREDENTIALS`: what a process talking to it uses, so nothing reaches a real account;
- `create_ledger_table()`: the ledger table as the ServiceStack makes it;
- `FakeLambdaContext`: the parts of Lambda's context object Powertools reads.

S3 notifications come from `contract.s3_object_created_record`, the builder the
pre-traffic hook uses too. This module imports no test code and ships in no Lambda asset.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import contract

# moto accepts any credentials; these say plainly that they are not real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """A running moto server; yields its endpoint URL (http://127.0.0.1:<port>).

    The server binds port 0 itself, so the port it gets is its own from the start: probing
    for a free port, closing it and handing the number to moto's ThreadedMotoServer (as
    the benchmark did) races with every other process, and a lost race leaves
    ThreadedMotoServer.start() waiting forever for a server that failed to bind. On exit
    the server stops and closes its listening socket.
    """
    # Imported here: moto's server is a heavy import, and the benchmark's warm workers load
    # this module for FakeLambdaContext only.
    from sandbox.emulator import MotoServer  # noqa: PLC0415 - see above

    server = MotoServer(port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def create_ledger_table(client: Any, table_name: str) -> None:
    """Create the ledger table as the ServiceStack makes it: partition key
    `contract.PARTITION_KEY` (string), on-demand capacity. `client` is a boto3 DynamoDB
    client (moto's, in-process or a server's); a test compares this with the template."""
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": contract.PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass(frozen=True)
class FakeLambdaContext:
    """What Powertools' `inject_lambda_context` reads from Lambda's context object."""

    function_name: str = contract.SERVICE_NAME
    memory_limit_in_mb: int = contract.LAMBDA_MEMORY_MB
    invoked_function_arn: str = (
        f"arn:aws:lambda:eu-central-1:123456789012:function:{contract.SERVICE_NAME}:"
        f"{contract.ALIAS_NAME}"
    )
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
