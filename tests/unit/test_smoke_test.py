"""The post-deploy smoke test, against moto: a simulated ledger function records uploads."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_aws import create_ledger_table
from scripts import smoke

REGION = "eu-central-1"
BUCKET = "uploadledger-test-service-uploadbucket"
TABLE = "UploadLedger-test-Service-LedgerTable"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[smoke.Clients]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = smoke.make_clients(REGION, None)
        clients.s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        clients.s3.put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        create_ledger_table(clients.dynamodb, TABLE)
        yield clients


def record_uploads(clients: smoke.Clients, *, size_offset: int = 0) -> None:
    """What the ledger function does for each object under the smoke-test prefix."""
    listing = clients.s3.list_objects_v2(Bucket=BUCKET, Prefix=smoke.KEY_PREFIX)
    for obj in listing.get("Contents", []):
        clients.dynamodb.put_item(
            TableName=TABLE,
            Item={
                "filename": {"S": obj["Key"]},
                "bucket": {"S": BUCKET},
                "size": {"N": str(obj["Size"] + size_offset)},
            },
        )


def fake_time() -> tuple[Any, Any]:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return clock, sleep


def test_passes_when_the_function_records_the_upload_and_cleans_up(
    aws: smoke.Clients,
) -> None:
    clock, advance = fake_time()

    def function_runs_while_waiting(seconds: float) -> None:
        advance(seconds)
        record_uploads(aws)

    out = io.StringIO()
    smoke.run(
        aws, bucket=BUCKET, table=TABLE, out=out, clock=clock, sleep=function_runs_while_waiting
    )
    assert "waiting for the ledger item... 0/120 s" in out.getvalue()
    assert "ledger item found after 2 s" in out.getvalue()
    versions = aws.s3.list_object_versions(Bucket=BUCKET)
    assert "Versions" not in versions
    assert "DeleteMarkers" not in versions
    assert aws.dynamodb.scan(TableName=TABLE)["Items"] == []


def test_key_is_unique_under_the_prefix_and_needs_url_decoding() -> None:
    first, second = smoke.unique_key(), smoke.unique_key()
    assert first != second
    assert first.startswith(smoke.KEY_PREFIX)
    assert " " in first
    assert "+" in first


def test_wrong_size_in_the_ledger_fails_with_the_reason(aws: smoke.Clients) -> None:
    clock, advance = fake_time()

    def function_records_wrong_size(seconds: float) -> None:
        advance(seconds)
        record_uploads(aws, size_offset=1)

    with pytest.raises(smoke.SmokeTestFailedError, match="records size"):
        smoke.run(
            aws,
            bucket=BUCKET,
            table=TABLE,
            out=io.StringIO(),
            clock=clock,
            sleep=function_records_wrong_size,
        )
    assert aws.dynamodb.scan(TableName=TABLE)["Items"] == []


def test_main_exits_1_with_a_clear_message_when_nothing_is_recorded(
    aws: smoke.Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    status = smoke.main(
        ["--bucket", BUCKET, "--table", TABLE, "--timeout", "0", "--region", REGION]
    )
    assert status == 1
    error = capsys.readouterr().err
    assert "SMOKE TEST FAILED: no ledger item for 'smoke-tests/" in error
    assert f"in table {TABLE} after 0 s" in error
    # The object is removed even when the test fails.
    assert "Versions" not in aws.s3.list_object_versions(Bucket=BUCKET)


def test_main_reads_names_from_environment_assumes_the_role_and_exits_0(
    aws: smoke.Clients,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(RoleName="smoke", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("SMOKE_TEST_ROLE_ARN", role_arn)
    stop = threading.Event()

    def ledger_function() -> None:
        while not stop.is_set():
            record_uploads(aws)
            stop.wait(0.05)

    worker = threading.Thread(target=ledger_function)
    worker.start()
    try:
        status = smoke.main(["--region", REGION, "--timeout", "30"])
    finally:
        stop.set()
        worker.join()
    assert status == 0, capsys.readouterr().err
    assert "SMOKE TEST PASSED" in capsys.readouterr().out


def test_missing_names_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    monkeypatch.delenv("TABLE_NAME", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        smoke.main(["--bucket", BUCKET])
    assert exit_info.value.code == 2


def test_prefix_is_the_one_the_stage_smoke_test_role_allows() -> None:
    import contract

    assert smoke.KEY_PREFIX == contract.SMOKE_TEST_PREFIX
