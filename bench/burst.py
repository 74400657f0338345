"""A burst of uploads through the local sandbox, end to end: files per second.

The sandbox (S3 -> SQS -> local Lambda runtime -> the real handler -> DynamoDB) is
imported only here, so every other section runs without it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import contract
from bench.settings import Sizes

BODY = b"benchmark upload\n"


def measure_burst(sizes: Sizes, cdk_out: Path) -> dict[str, Any]:
    """Upload ``sizes.burst_uploads`` files back to back; time until all are in the ledger.

    The clock runs from the first upload until the sandbox is idle, so files per second
    is the whole path: S3 PUT, notification, queue, async invoke, handler, DynamoDB.
    """
    # Imported here only: it starts nothing, but the other sections need none of it.
    from sandbox import Faults, Sandbox  # noqa: PLC0415

    if not (cdk_out / "manifest.json").is_file():
        raise RuntimeError(f"burst: no synthesized app in {cdk_out}; run `make synth` first")
    keys = [f"burst/file {index:05d}.txt" for index in range(sizes.burst_uploads)]
    with Sandbox(cdk_out=cdk_out, faults=Faults()) as sandbox:
        started = time.perf_counter()
        for key in keys:
            sandbox.upload(key, BODY)
        sandbox.wait_until_idle(timeout=sizes.burst_timeout_s)
        elapsed = time.perf_counter() - started
        recorded = {item[contract.PARTITION_KEY] for item in sandbox.ledger()}
    missing = [key for key in keys if key not in recorded]
    if missing:
        raise RuntimeError(f"burst: {len(missing)} of {len(keys)} uploads not in the ledger")
    return {
        "uploads": len(keys),
        "seconds": elapsed,
        "files_per_second": len(keys) / elapsed,
    }
