"""End-to-end fixtures: a running sandbox over the session's synthesized app (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Faults, Sandbox

# Lambda's retries after seconds instead of minutes keep the suite fast.
RETRY_DELAY_SECONDS = 0.05


@pytest.fixture(scope="module")
def sandbox(cdk_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    log = tmp_path_factory.mktemp("sandbox") / "function.log"
    with Sandbox(cdk_out, Faults(), RETRY_DELAY_SECONDS, function_log=log) as sb:
        yield sb
