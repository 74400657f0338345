"""Ledger logic: S3 notification -> ledger entries -> ordered, idempotent writes.

No AWS SDK here: writes go through a :class:`LedgerWriter` (the repository in
production, anything with the same method in tests).

Ordering (the ``sequencer_order`` attribute, see :func:`order_value`)
----------------------------------------------------------------------
Each item stores one internal string, ``sequencer_order``, that orders the events
for its key; a write happens only if the stored value is absent or strictly
smaller, so equal values (a repeated delivery) and smaller values (an older event)
change nothing.

- Events with an S3 ``sequencer``: ``"S#"`` + the sequencer in uppercase hex,
  right-padded with ``'0'`` to 64 characters. S3 says to compare sequencers as hex
  after right-padding the shorter with zeros; with one fixed width, string
  comparison of the normalised forms is exactly that comparison.
- Events without one (the local emulator omits it): ``"E#"`` + ``eventTime``
  normalised to UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, so string order
  is chronological order).
- Mixed: ``"E#" < "S#"``, so an unsequenced event never overwrites a sequenced item,
  and a sequenced event always supersedes an item written from an unsequenced one.
  The sequencer is S3's own order; ``eventTime`` is only a fallback (millisecond
  resolution: two uploads of one key in the same millisecond without sequencers
  count as a duplicate).
- Stored items without a usable value (no ``sequencer_order``, another type, or a
  string outside :data:`ORDER_VALUE_RANGES`: a backfill, the original demo's schema,
  an item written by hand) are older than any event, so the next event for the key
  overwrites them. Only a usable stored value makes a skip a duplicate or stale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol
from urllib.parse import unquote_plus

import contract

SEQUENCED_PREFIX = "S#"
UNSEQUENCED_PREFIX = "E#"
SEQUENCER_WIDTH = 64
S3_EVENT_SOURCE = contract.S3_EVENT_SOURCE
S3_TEST_EVENT = contract.S3_TEST_EVENT

_HEX = re.compile(r"[0-9A-Fa-f]+")
# Every value order_value() can produce lies in one of these inclusive string ranges;
# the repository's condition and is_usable_order() treat anything else as no order.
ORDER_VALUE_RANGES = (
    (
        UNSEQUENCED_PREFIX + "0001-01-01T00:00:00.000000Z",
        UNSEQUENCED_PREFIX + "9999-12-31T23:59:59.999999Z",
    ),
    (SEQUENCED_PREFIX + "0" * SEQUENCER_WIDTH, SEQUENCED_PREFIX + "F" * SEQUENCER_WIDTH),
)


class InvalidRecordError(ValueError):
    """One record of a notification cannot be turned into a ledger entry."""


class NotAnS3NotificationError(ValueError):
    """The event is neither an S3 notification with ``Records`` nor an S3 test event."""


class LedgerWriteError(Exception):
    """A writer could not store an entry (anything but 'an equal or newer one exists').

    ``request_id`` and ``status_code`` are the store's answer (DynamoDB's request id and
    HTTP status, what AWS Support asks for) when there was one; None when the request got
    no answer (a connection error).
    """

    def __init__(
        self, message: str, *, request_id: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.status_code = status_code


class WriteOutcome(Enum):
    """What a conditional write did."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"  # the stored item has the same order value
    STALE = "stale"  # the stored item is newer


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger item: the decoded key and what the notification said about it."""

    filename: str
    bucket: str
    size: int
    etag: str
    event_time: str
    event_name: str
    order: str
    version_id: str | None = None
    sequencer: str | None = None


class LedgerWriter(Protocol):
    """Stores an entry unless an equal or newer one exists; atomic per key."""

    def put_if_newer(self, entry: LedgerEntry) -> WriteOutcome:
        """Write ``entry``; raise :class:`LedgerWriteError` on any other failure."""
        ...


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record that was not recorded, and the error that stopped it."""

    index: int
    key: str | None
    error: InvalidRecordError | LedgerWriteError

    @property
    def reason(self) -> str:
        """What was wrong, in one line."""
        return str(self.error)


@dataclass(slots=True)
class BatchResult:
    """Outcome of one notification, record by record."""

    recorded: list[LedgerEntry] = field(default_factory=list)
    duplicates: list[LedgerEntry] = field(default_factory=list)
    stale: list[LedgerEntry] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts, as returned by the Lambda function."""
        return {
            "recorded": len(self.recorded),
            "skipped": len(self.duplicates) + len(self.stale),
            "failed": len(self.failures),
        }


class BatchFailedError(RuntimeError):
    """Some records failed; raised after all the others were processed, so Lambda retries."""

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        details = "; ".join(
            f"record {f.index} (key {f.key!r}): {f.reason}" for f in result.failures
        )
        super().__init__(
            f"{len(result.failures)} of {_total(result)} records could not be recorded: {details}"
        )


def _total(result: BatchResult) -> int:
    return len(result.recorded) + len(result.duplicates) + len(result.stale) + len(result.failures)


def is_s3_test_event(event: Mapping[str, Any]) -> bool:
    """True for the ``s3:TestEvent`` message S3 sends when a notification is configured."""
    return event.get("Event") == S3_TEST_EVENT and "Records" not in event


def decode_key(encoded: str) -> str:
    """Decode an object key as S3 encodes it in notifications (``+`` is a space, UTF-8).

    Strict UTF-8: a key that doesn't decode is an error, never a key with U+FFFD in it.
    """
    return unquote_plus(encoded, encoding="utf-8", errors="strict")


def normalise_sequencer(sequencer: str) -> str:
    """Uppercase hex right-padded with '0' to a fixed width, so strings compare as S3 says."""
    if not _HEX.fullmatch(sequencer) or len(sequencer) > SEQUENCER_WIDTH:
        raise InvalidRecordError(f"sequencer {sequencer!r} is not hex of 1..64 digits")
    return sequencer.upper().ljust(SEQUENCER_WIDTH, "0")


def normalise_event_time(event_time: str) -> str:
    """ISO-8601 time -> fixed-width UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(event_time)
    except ValueError as error:
        raise InvalidRecordError(f"eventTime {event_time!r} is not ISO-8601") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def order_value(sequencer: str | None, event_time: str) -> str:
    """The ``sequencer_order`` value of an event (see the module docstring)."""
    if sequencer is not None:
        return SEQUENCED_PREFIX + normalise_sequencer(sequencer)
    return UNSEQUENCED_PREFIX + normalise_event_time(event_time)


def is_usable_order(stored: str) -> bool:
    """True if a stored ``sequencer_order`` is comparable with events' order values.

    The same ranges as the repository's condition expression, so Python and DynamoDB
    agree on which stored items were really compared.
    """
    return any(lowest <= stored <= highest for lowest, highest in ORDER_VALUE_RANGES)


def event_records(event: Mapping[str, Any]) -> list[Any]:
    """The raw ``Records`` of an S3 notification; anything else is an error."""
    if "Records" not in event:
        raise NotAnS3NotificationError(
            "event has no Records and is not an s3:TestEvent, so it is not an S3 "
            f"notification (top-level keys: {sorted(event)[:10]})"
        )
    records = event["Records"]
    if not isinstance(records, list):
        raise NotAnS3NotificationError(
            f"event's Records is a {type(records).__name__}, not a list, so it is not an S3 "
            "notification"
        )
    if not records:
        raise NotAnS3NotificationError(
            "event's Records is empty: an S3 notification has at least one record"
        )
    return records


def reported_key(record: Any) -> str | None:
    """Best-effort key of a raw record for error reports: decoded if it can be, else as sent."""
    try:
        key = record["s3"]["object"]["key"]
    except (KeyError, TypeError):
        return None
    if not isinstance(key, str):
        return None
    try:
        return decode_key(key)
    except UnicodeDecodeError:
        return key


def _required_str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"missing or empty {name}")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    return _required_str(value, name)


def _size(value: Any) -> int:
    # bool is an int subclass; a JSON true is not a size.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRecordError(f"s3.object.size {value!r} is not a non-negative integer")
    return value


def _etag(value: Any) -> str:
    # Powertools' convention: an event without an eTag (deletions) has an empty one.
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRecordError(f"s3.object.eTag {value!r} is not a string")
    return value


def parse_record(raw: Any) -> LedgerEntry:
    """One raw notification record -> a ledger entry, or :class:`InvalidRecordError`."""
    if not isinstance(raw, dict):
        raise InvalidRecordError("record is not a JSON object")
    # Plain dict access, not Powertools' S3EventRecord: every field is validated here
    # anyway, and importing the data classes package (it loads all of them) added
    # ~25 ms to cold start for two attribute look-ups (`make bench`, import shares).
    record: dict[str, Any] = raw
    if record.get("eventSource") != S3_EVENT_SOURCE:
        raise InvalidRecordError(
            f"eventSource {record.get('eventSource')!r} is not {S3_EVENT_SOURCE}"
        )
    s3 = record.get("s3")
    if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict):
        raise InvalidRecordError("missing s3.bucket")
    obj = s3.get("object")
    if not isinstance(obj, dict):
        raise InvalidRecordError("missing s3.object")
    # The key arrives encoded as S3 encodes it: decode once, here.
    encoded_key = _required_str(obj.get("key"), "s3.object.key")
    try:
        filename = decode_key(encoded_key)
    except UnicodeDecodeError as error:
        raise InvalidRecordError(f"s3.object.key is not UTF-8 once decoded: {error}") from error
    if not filename:
        raise InvalidRecordError("s3.object.key decodes to an empty key")
    event_time = _required_str(record.get("eventTime"), "eventTime")
    sequencer = _optional_str(obj.get("sequencer"), "s3.object.sequencer")
    return LedgerEntry(
        filename=filename,
        bucket=_required_str(s3["bucket"].get("name"), "s3.bucket.name"),
        size=_size(obj.get("size")),
        etag=_etag(obj.get("eTag")),
        event_time=event_time,
        event_name=_required_str(record.get("eventName"), "eventName"),
        order=order_value(sequencer, event_time),
        version_id=_optional_str(obj.get("versionId"), "s3.object.versionId"),
        sequencer=sequencer,
    )


def process_records(records: list[Any], writer: LedgerWriter) -> BatchResult:
    """Record every record it can; a bad one is noted and the rest still go through."""
    result = BatchResult()
    for index, raw in enumerate(records):
        entry: LedgerEntry | None = None
        try:
            entry = parse_record(raw)
            outcome = writer.put_if_newer(entry)
        except (InvalidRecordError, LedgerWriteError) as error:
            key = entry.filename if entry is not None else reported_key(raw)
            result.failures.append(RecordFailure(index=index, key=key, error=error))
            continue
        _bucket_for(result, outcome).append(entry)
    return result


def _bucket_for(result: BatchResult, outcome: WriteOutcome) -> list[LedgerEntry]:
    if outcome is WriteOutcome.WRITTEN:
        return result.recorded
    if outcome is WriteOutcome.DUPLICATE:
        return result.duplicates
    return result.stale
