"""S3 notification events shaped like S3's own document (contract.py), with unique keys."""

from __future__ import annotations

import itertools
import os
from typing import Any

import contract
from bench.settings import BUCKET, REGION

_counter = itertools.count()
# Workers share one table: each process's keys carry its id, so every put is a new item.
_PROCESS = f"p{os.getpid()}"


def s3_record(key: str, size: int = 1024) -> dict[str, Any]:
    """One ObjectCreated:Put record for ``key``, with a sequencer that only grows."""
    return contract.s3_object_created_record(
        BUCKET, key, size=size, sequencer=f"{next(_counter):016X}", region=REGION
    )


def s3_event(prefix: str, records: int) -> dict[str, Any]:
    """A notification of ``records`` new objects; keys never repeat, across processes too."""
    return contract.s3_notification(
        *(s3_record(f"{_PROCESS}/{prefix}/upload {next(_counter)}.csv") for _ in range(records))
    )
