"""The contract stays a plain module, and the runtime side never loads the CDK (jsii)."""

from __future__ import annotations

import ast
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import contract
from tests.conftest import RunPython

# Everything that runs outside `cdk synth`: loading aws_cdk starts jsii (two Node processes,
# about 1.4 s), which would sit in a cold start, a CLI command or a measurement.
RUNTIME_MODULES = (
    "handler.app",
    "hooks.pre_traffic",
    "scripts.smoke",
    "sandbox.cli",
    "bench",
    # These read cdk.out after synth, as `make nag` and `make test` run them.
    "compliance.policies",
    "compliance.report",
)


def test_contract_imports_the_standard_library_only_so_it_ships_in_any_asset() -> None:
    tree = ast.parse(Path(contract.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= sys.stdlib_module_names


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_runtime_module_never_imports_the_cdk(module: str, run_python: RunPython) -> None:
    env = {**os.environ, contract.TABLE_NAME_ENV: "ledger", "AWS_DEFAULT_REGION": "eu-central-1"}
    statement = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aws_cdk', 'jsii')))"
    )
    result = run_python("-c", statement, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_names_are_built_from_the_stage() -> None:
    assert contract.alarm_name("prod", "function-errors") == ("upload-ledger-prod-function-errors")
    assert contract.smoke_test_role_name("prod", "eu-central-1") == (
        "UploadLedger-prod-eu-central-1-smoke-test"
    )
    assert contract.DASHBOARD_NAME_FORMAT.format(stage="prod") == "upload-ledger-prod"


def test_s3_record_encodes_the_key_as_s3_does_and_omits_what_s3_omits() -> None:
    record = contract.s3_object_created_record("uploads", "dir/a b+c.txt", size=3)
    assert record["eventSource"] == contract.S3_EVENT_SOURCE
    assert record["eventName"] == contract.S3_OBJECT_CREATED_PUT
    assert record["s3"]["bucket"] == {
        "name": "uploads",
        "ownerIdentity": {"principalId": "EXAMPLE"},
        "arn": "arn:aws:s3:::uploads",
    }
    assert record["s3"]["object"] == {
        "key": "dir/a+b%2Bc.txt",
        "size": 3,
        "eTag": contract.EMPTY_OBJECT_ETAG,
    }
    assert "awsRegion" not in record


def test_s3_event_time_is_utc_with_milliseconds() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert contract.s3_event_time(moment) == "2024-05-01T12:00:00.123Z"
