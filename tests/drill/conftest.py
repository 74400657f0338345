"""A sandbox shared by the drill tests (the drill invokes the function itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Sandbox


@pytest.fixture(scope="module")
def drill_sandbox(cdk_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    log = tmp_path_factory.mktemp("drill") / "function.log"
    with Sandbox(cdk_out, function_log=log, start_runtime=False) as sandbox:
        yield sandbox
