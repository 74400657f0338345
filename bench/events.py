"""S3 notification events shaped like S3's own document, with unique keys."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from bench.settings import BUCKET, REGION

_counter = itertools.count()
# Workers share one table: each process's keys carry its id, so every put is a new item.
_PROCESS = f"p{os.getpid()}"


def s3_record(key: str, size: int = 1024) -> dict[str, Any]:
    """One ObjectCreated:Put record for ``key`` (encoded as S3 encodes it)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ledger",
            "bucket": {
                "name": BUCKET,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{BUCKET}",
            },
            "object": {
                "key": quote_plus(key),
                "size": size,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": f"{next(_counter):016X}",
            },
        },
    }


def s3_event(prefix: str, records: int) -> dict[str, Any]:
    """A notification of ``records`` new objects; keys never repeat, across processes too."""
    return {
        "Records": [
            s3_record(f"{_PROCESS}/{prefix}/upload {next(_counter)}.csv") for _ in range(records)
        ]
    }
