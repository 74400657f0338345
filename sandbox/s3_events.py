"""S3 event fields moto leaves out: `versionId` and `sequencer`, as S3 sends them.

S3 puts in every object event a `sequencer`, a hex string that grows with the order of
writes to one key ("compare as hex after right-padding the shorter with '0'"), and, in a
versioning-enabled bucket, the new object's `versionId`
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
moto's events carry neither, so the handler's ordering by sequencer would never run
offline. :func:`install` makes moto's S3 (process-wide, as moto itself is) add both:

- writes that notify (put, copy, complete multipart upload, delete) run one at a time,
  so the order events are built in is the order the writes were stored in;
- each stored object gets the next value of one counter (fixed-width hex, so it grows
  under S3's comparison too), the same for every notification of that write.

Idempotent; the sandbox's emulator installs it when it starts.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.s3 import models, notifications

SEQUENCER_DIGITS = 18  # as long as the sequencers S3 sends
_WRITES = ("put_object", "copy_object", "complete_multipart_upload", "delete_object")
_ATTRIBUTE = "_sandbox_sequencer"
_write_lock = threading.RLock()  # re-entrant: copy_object calls put_object
_counter = itertools.count(time.time_ns() // 1000)  # later processes start higher
_installed = False


def install() -> None:
    """Make moto's S3 events carry `sequencer` and `versionId` (once per process)."""
    global _installed  # noqa: PLW0603 - moto's modules are process-wide state themselves
    with _write_lock:
        if _installed:
            return
        for name in _WRITES:
            setattr(models.S3Backend, name, _serialized(getattr(models.S3Backend, name)))
        notifications._get_s3_event = _with_order(notifications._get_s3_event)
        _installed = True


def _serialized(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with _write_lock:
            return write(*args, **kwargs)

    return serialized


def _with_order(build: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(build)
    def with_order(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = build(event_name, bucket, key, notification_id)
        s3_object = event["Records"][0]["s3"]["object"]
        s3_object["sequencer"] = sequencer_of(key)
        if bucket.is_versioned and key.version_id not in (None, "null"):
            s3_object["versionId"] = key.version_id
        return event

    return with_order


def sequencer_of(key: Any) -> str:
    """The sequencer of one stored object (a write): assigned once, at its first event."""
    with _write_lock:
        sequencer = getattr(key, _ATTRIBUTE, None)
        if sequencer is None:
            sequencer = f"{next(_counter):0{SEQUENCER_DIGITS}X}"
            setattr(key, _ATTRIBUTE, sequencer)
        return str(sequencer)
