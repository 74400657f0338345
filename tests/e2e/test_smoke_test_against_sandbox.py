"""The pipeline's post-deploy smoke test, run unchanged against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.e2e

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def run_smoke_test(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    # Only the endpoint differs from a real deployment: the same command the pipeline runs.
    environment = {**os.environ, **sandbox.environment()}
    return subprocess.run(  # noqa: S603 - our own script, arguments built here
        [sys.executable, "-m", "scripts.smoke_test", *args],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smoke_test_passes_against_the_sandbox_and_cleans_up(sandbox: Sandbox) -> None:
    before = {item["filename"] for item in sandbox.ledger()}
    result = run_smoke_test(
        sandbox, "--bucket", sandbox.bucket_name, "--table", sandbox.table_name, "--timeout", "60"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sandbox.wait_until_idle(timeout=30)
    # It deleted its own ledger item: the ledger lists real uploads only.
    assert {item["filename"] for item in sandbox.ledger()} == before


def test_smoke_test_fails_clearly_when_nothing_records_the_upload(sandbox: Sandbox) -> None:
    # A table the function does not write: the upload is never recorded there.
    client = sandbox.client("dynamodb")
    client.create_table(
        TableName="unwatched",
        KeySchema=[{"AttributeName": "filename", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "filename", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = run_smoke_test(
        sandbox, "--bucket", sandbox.bucket_name, "--table", "unwatched", "--timeout", "3"
    )
    assert result.returncode == 1
    assert "SMOKE TEST FAILED" in result.stdout + result.stderr
