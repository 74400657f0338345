"""Each Lambda asset holds its package and the contract, and imports on its own from there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import contract
from stage import LedgerStage
from tests.conftest import RunPython

# (entry module, what the asset holds besides the contract, environment its import needs)
ASSETS = {
    contract.HANDLER_PACKAGE: ("handler.app", {contract.TABLE_NAME_ENV: "ledger"}),
    contract.HOOK_PACKAGE: ("hooks.pre_traffic", {}),
}


def _staged_assets(stage: LedgerStage, package: str) -> list[Path]:
    # A stage's assets are staged in the app's output directory, beside its assembly.
    outdir = Path(stage.synth().directory).parent
    return sorted({p.parent for p in outdir.glob(f"asset.*/{package}/__init__.py")})


@pytest.mark.parametrize("package", sorted(ASSETS))
def test_asset_holds_its_package_and_the_contract_only(stage: LedgerStage, package: str) -> None:
    assets = [asset.parent for asset in _staged_assets(stage, package)]
    assert assets, f"no staged asset holds {package}/"
    for asset in assets:
        assert {p.name for p in asset.iterdir()} == {package, contract.CONTRACT_MODULE_FILE}


@pytest.mark.parametrize("package", sorted(ASSETS))
def test_asset_imports_with_nothing_but_itself_on_the_path(
    stage: LedgerStage, package: str, run_python: RunPython
) -> None:
    # What Lambda does: the asset's root is the working directory and on sys.path, the
    # repository is not. Site-packages stand in for the layer (Powertools) and the runtime.
    module, environment = ASSETS[package]
    asset = _staged_assets(stage, package)[0].parent
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "AWS_DEFAULT_REGION": "eu-central-1",
        **environment,
    }
    result = run_python(
        "-c", f"import {module}, contract; print(contract.__file__)", cwd=asset, env=env
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).parent == asset
