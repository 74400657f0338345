"""The contract stays a plain module, and the runtime side never loads the CDK (jsii)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import contract
from tests.conftest import RunPython

# Everything that runs outside `cdk synth`: loading aws_cdk starts jsii (two Node processes,
# about 1.4 s), which would sit in a cold start, a CLI command or a measurement.
RUNTIME_MODULES = ("handler.app", "hooks.pre_traffic", "scripts.smoke_test", "sandbox.cli", "bench")


def test_contract_imports_nothing_so_it_ships_in_any_asset() -> None:
    tree = ast.parse(Path(contract.__file__).read_text(encoding="utf-8"))
    imported = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    assert imported == []


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
