"""The pipeline's post-deploy smoke test, run unchanged against the sandbox."""

from __future__ import annotations

import os

import pytest

from local_aws import create_ledger_table
from sandbox import Sandbox
from tests.conftest import RunPython

pytestmark = pytest.mark.e2e


@pytest.fixture
def run_smoke_test(sandbox: Sandbox, run_python: RunPython) -> RunPython:
    # Only the endpoint differs from a real deployment: the same command the pipeline runs.
    environment = {**os.environ, **sandbox.environment()}
    return lambda *args: run_python("-m", "scripts.smoke", *args, env=environment)


def test_smoke_test_passes_against_the_sandbox_and_cleans_up(
    sandbox: Sandbox, run_smoke_test: RunPython
) -> None:
    before = {item["filename"] for item in sandbox.ledger()}
    result = run_smoke_test(
        "--bucket", sandbox.bucket_name, "--table", sandbox.table_name, "--timeout", "60"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sandbox.wait_until_idle(timeout=30)
    # It deleted its own ledger item: the ledger lists real uploads only.
    assert {item["filename"] for item in sandbox.ledger()} == before


def test_smoke_test_fails_clearly_when_nothing_records_the_upload(
    sandbox: Sandbox, run_smoke_test: RunPython
) -> None:
    # A table the function does not write: the upload is never recorded there.
    create_ledger_table(sandbox.client("dynamodb"), "unwatched")
    result = run_smoke_test(
        "--bucket", sandbox.bucket_name, "--table", "unwatched", "--timeout", "3"
    )
    assert result.returncode == 1
    assert "SMOKE TEST FAILED" in result.stdout + result.stderr
