"""Smoke test of a deployed stage: upload one object, wait for its ledger item, clean up.

    python -m scripts.smoke --bucket BUCKET --table TABLE [--timeout 120] [--region R]
                                 [--role-arn ARN]

Each option may also come from the environment (BUCKET_NAME, TABLE_NAME, SMOKE_TEST_ROLE_ARN):
the pipeline's post-deploy step sets them from the stage's stack outputs. boto3 resolves
its endpoint itself, so AWS_ENDPOINT_URL points the script at an emulator.

Exit status: 0 when the ledger recorded the upload correctly, 1 otherwise (with the reason).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

import contract

# Everything the smoke test writes lives under this prefix: the stage's smoke-test role
# may touch nothing else, and a reader of the ledger can tell test items from uploads.
KEY_PREFIX = contract.SMOKE_TEST_PREFIX
# A space and a plus exercise the handler's URL-decoding (S3 sends "+" and "%2B").
KEY_SUFFIX = " with space+plus.txt"
PARTITION_KEY = contract.PARTITION_KEY
DEFAULT_TIMEOUT_SECONDS = float(contract.SMOKE_TEST_TIMEOUT_SECONDS)
POLL_INTERVAL_SECONDS = 2.0


class SmokeTestFailedError(Exception):
    """The stage did not record the upload as the ledger contract promises."""


@dataclass(frozen=True)
class Clients:
    s3: Any
    dynamodb: Any


def unique_key(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{KEY_PREFIX}{stamp}-{uuid.uuid4().hex}{KEY_SUFFIX}"


def make_clients(region: str | None, role_arn: str | None) -> Clients:
    session = boto3.Session(region_name=region)
    if role_arn:
        # Stages may live in other accounts: the stage's own smoke-test role is assumed.
        credentials = session.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="upload-ledger-smoke-test"
        )["Credentials"]
        session = boto3.Session(
            region_name=region,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
    return Clients(s3=session.client("s3"), dynamodb=session.client("dynamodb"))


def wait_for_item(
    clients: Clients,
    table: str,
    key: str,
    *,
    timeout: float,
    out: TextIO,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    started = clock()
    while True:
        response = clients.dynamodb.get_item(
            TableName=table, Key={PARTITION_KEY: {"S": key}}, ConsistentRead=True
        )
        waited = clock() - started
        if "Item" in response:
            print(f"  ledger item found after {waited:.0f} s", file=out)
            item: dict[str, Any] = response["Item"]
            return item
        if waited >= timeout:
            raise SmokeTestFailedError(
                f"no ledger item for {key!r} in table {table} after {timeout:.0f} s: "
                "the S3 notification, the function or its table write is not working "
                "(see the function's logs and the failure queue)"
            )
        print(f"  waiting for the ledger item... {waited:.0f}/{timeout:.0f} s", file=out)
        sleep(poll_interval)


def check_item(item: dict[str, Any], *, bucket: str, size: int) -> None:
    recorded_bucket = item.get(contract.ATTR_BUCKET, {}).get("S")
    recorded_size = item.get(contract.ATTR_SIZE, {}).get("N")
    if recorded_bucket != bucket:
        raise SmokeTestFailedError(f"ledger item names bucket {recorded_bucket!r}, not {bucket!r}")
    if recorded_size is None or int(recorded_size) != size:
        raise SmokeTestFailedError(f"ledger item records size {recorded_size!r}, not {size}")


def clean_up(
    clients: Clients, *, bucket: str, table: str, key: str, version_id: str | None
) -> None:
    # The object version itself, not a delete marker: the versioned bucket keeps nothing.
    # The ledger item too, so the ledger lists only real uploads (the role may delete
    # items under the smoke-test prefix and nothing else).
    if version_id:
        clients.s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    else:
        clients.s3.delete_object(Bucket=bucket, Key=key)
    clients.dynamodb.delete_item(TableName=table, Key={PARTITION_KEY: {"S": key}})


def run(
    clients: Clients,
    *,
    bucket: str,
    table: str,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    out: TextIO = sys.stdout,
    **wait_options: Any,
) -> None:
    """Upload, wait, verify, clean up. Raises SmokeTestFailedError with the reason."""
    key = unique_key()
    body = f"upload-ledger smoke test {key}\n".encode()
    print(f"Uploading s3://{bucket}/{key} ({len(body)} bytes)", file=out)
    put = clients.s3.put_object(Bucket=bucket, Key=key, Body=body)
    version_id = put.get("VersionId")
    try:
        print(f"Polling table {table} for {PARTITION_KEY} = {key!r}", file=out)
        item = wait_for_item(clients, table, key, timeout=timeout, out=out, **wait_options)
        check_item(item, bucket=bucket, size=len(body))
    finally:
        clean_up(clients, bucket=bucket, table=table, key=key, version_id=version_id)
        print("Cleaned up the smoke-test object and ledger item", file=out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bucket", default=os.environ.get(contract.SMOKE_TEST_ENV_BUCKET_NAME))
    parser.add_argument("--table", default=os.environ.get(contract.SMOKE_TEST_ENV_TABLE_NAME))
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--role-arn", default=os.environ.get(contract.SMOKE_TEST_ENV_ROLE_ARN) or None
    )
    args = parser.parse_args(argv)
    if not args.bucket or not args.table:
        parser.error(
            "--bucket and --table are required (or set "
            f"{contract.SMOKE_TEST_ENV_BUCKET_NAME} and {contract.SMOKE_TEST_ENV_TABLE_NAME})"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        clients = make_clients(args.region, args.role_arn)
        run(clients, bucket=args.bucket, table=args.table, timeout=args.timeout)
    except SmokeTestFailedError as error:
        print(f"SMOKE TEST FAILED: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"SMOKE TEST FAILED: AWS call failed: {error}", file=sys.stderr)
        return 1
    print("SMOKE TEST PASSED: the upload was recorded in the ledger")
    return 0


if __name__ == "__main__":
    sys.exit(main())
