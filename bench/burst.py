"""A burst of uploads through the local sandbox, end to end: files per second.

The sandbox (S3 -> SQS -> local Lambda runtime -> the real handler -> DynamoDB) is
imported only here, so every other section runs without it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.settings import Sizes

BODY = b"benchmark upload\n"


class SandboxUnavailableError(RuntimeError):
    """The ``sandbox`` package is not installed in this checkout."""


def measure_burst(sizes: Sizes, cdk_out: Path) -> dict[str, Any]:
    """Upload ``sizes.burst_uploads`` files back to back; time until all are in the ledger.

    The clock runs from the first upload until the sandbox is idle, so files per second
    is the whole path: S3 PUT, notification, queue, async invoke, handler, DynamoDB.
    """
    try:
        # Optional (see module docstring). The ignore lets mypy pass until the sandbox
        # package is on main; delete it then, and mypy checks this call against it.
        from sandbox import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
            Faults,
            Sandbox,
        )
    except ImportError as error:
        raise SandboxUnavailableError("sandbox not available") from error
    if not (cdk_out / "manifest.json").is_file():
        raise RuntimeError(f"burst: no synthesized app in {cdk_out}; run `make synth` first")
    keys = [f"burst/file {index:05d}.txt" for index in range(sizes.burst_uploads)]
    with Sandbox(cdk_out=cdk_out, faults=Faults()) as sandbox:
        started = time.perf_counter()
        for key in keys:
            sandbox.upload(key, BODY)
        sandbox.wait_until_idle(timeout=sizes.burst_timeout_s)
        elapsed = time.perf_counter() - started
        recorded = {_filename(item) for item in sandbox.ledger()}
    missing = [key for key in keys if key not in recorded]
    if missing:
        raise RuntimeError(f"burst: {len(missing)} of {len(keys)} uploads not in the ledger")
    return {
        "uploads": len(keys),
        "seconds": elapsed,
        "files_per_second": len(keys) / elapsed,
    }


def _filename(item: dict[str, Any]) -> Any:
    # The ledger's items may come plain or in DynamoDB's typed form ({"S": ...}).
    value = item.get("filename")
    return value.get("S") if isinstance(value, dict) else value
