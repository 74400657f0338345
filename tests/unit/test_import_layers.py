"""Arrows point down: each part of the repository imports only the parts below it.

Top to bottom: the app; the pipeline; the stage; the monitoring stack over the service
stack; configuration, cdk-nag wiring and the contract at the bottom. The function, the
hook and the smoke test ship or run on their own, so they import the contract and nothing
else of ours; the sandbox and the benchmark run the function from outside, and
`local_aws` holds the stand-ins for AWS that the tests and the benchmark share.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# What each top-level part may import of ours. A new part gets a row here, on purpose.
MAY_IMPORT: dict[str, set[str]] = {
    "contract": set(),
    "config": {"contract"},
    # compliance/policies.py reads a stack's partition from its region (config/regions.py).
    "compliance": {"config"},
    "handler": {"contract"},
    "hooks": {"contract"},
    "scripts": {"contract"},
    "service": {"contract", "config", "compliance"},
    "monitoring": {"contract", "config", "compliance", "service"},
    "stage": {"contract", "config", "service", "monitoring"},
    "pipeline": {"contract", "config", "compliance", "stage"},
    "app": {"contract", "config", "compliance", "pipeline", "stage"},
    "sandbox": {"contract", "config"},
    "local_aws": {"contract", "sandbox"},
    # bench/__main__.py shows its progress with the build steps' heartbeat (scripts/).
    "bench": {"contract", "config", "handler", "sandbox", "local_aws", "scripts"},
}
NOT_CODE_WE_SHIP = {"tests", "node_modules", "cdk.out"}


def _parts() -> set[str]:
    found = set()
    for path in REPOSITORY_ROOT.iterdir():
        if path.name.startswith(".") or path.name in NOT_CODE_WE_SHIP:
            continue
        if path.suffix == ".py" or (path / "__init__.py").is_file():
            found.add(path.stem)
    return found


def _imports_of_ours(part: str) -> dict[str, set[str]]:
    """{file: our top-level parts it imports} for every module of `part`."""
    module = REPOSITORY_ROOT / f"{part}.py"
    files = [module] if module.is_file() else sorted((REPOSITORY_ROOT / part).rglob("*.py"))
    ours = set(MAY_IMPORT)
    found: dict[str, set[str]] = {}
    for path in files:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(REPOSITORY_ROOT))] = {
            name.split(".")[0] for name in names if name.split(".")[0] in ours - {part}
        }
    return found


def test_every_part_has_a_place_in_the_layers() -> None:
    assert _parts() == set(MAY_IMPORT)


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_part_imports_only_the_parts_below_it(part: str) -> None:
    upward = {
        path: sorted(imported - MAY_IMPORT[part])
        for path, imported in _imports_of_ours(part).items()
        if imported - MAY_IMPORT[part]
    }
    assert upward == {}
