"""The ledger logic on its own: parsing, ordering values, batch processing (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from handler.ledger import (
    SEQUENCER_WIDTH,
    InvalidRecordError,
    LedgerEntry,
    LedgerWriteError,
    NotAnS3NotificationError,
    WriteOutcome,
    decode_key,
    event_records,
    is_s3_test_event,
    normalise_event_time,
    order_value,
    parse_record,
    process_records,
)
from tests.unit.conftest import BUCKET, s3_record


class InMemoryWriter:
    """The same conditional write as the repository, over a dict."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.items: dict[str, LedgerEntry] = {}
        self.fail_on = fail_on

    def put_if_newer(self, entry: LedgerEntry) -> WriteOutcome:
        if entry.filename == self.fail_on:
            raise LedgerWriteError("throttled")
        current = self.items.get(entry.filename)
        if current is not None and current.order == entry.order:
            return WriteOutcome.DUPLICATE
        if current is not None and current.order > entry.order:
            return WriteOutcome.STALE
        self.items[entry.filename] = entry
        return WriteOutcome.WRITTEN


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("my+file.txt", "my file.txt"),
        ("a%2Bb.txt", "a+b.txt"),
        ("dir%2Fsub%2Ffile", "dir/sub/file"),
        ("dir/sub/file", "dir/sub/file"),
        ("caf%C3%A9+%E2%9C%93.txt", "café ✓.txt"),
        ("100%25+done", "100% done"),
    ],
)
def test_decode_key_follows_s3_notification_encoding(encoded: str, decoded: str) -> None:
    assert decode_key(encoded) == decoded


def test_parse_record_decodes_the_key_exactly_once() -> None:
    # "%252B" is how S3 encodes a key containing the literal text "%2B".
    entry = parse_record(s3_record("%2B", sequencer="AB"))
    assert entry.filename == "%2B"


def test_parse_record_maps_the_contract_attributes() -> None:
    entry = parse_record(s3_record("a b.txt", size=42, sequencer="0a1", version_id="v1"))
    assert entry == LedgerEntry(
        filename="a b.txt",
        bucket=BUCKET,
        size=42,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        event_time="2024-05-01T12:00:00.000Z",
        event_name="ObjectCreated:Put",
        order="S#0A1" + "0" * (SEQUENCER_WIDTH - 3),
        version_id="v1",
        sequencer="0a1",
    )


def test_parse_record_without_sequencer_or_version_leaves_them_out() -> None:
    entry = parse_record(s3_record("k", sequencer=None, version_id=None))
    assert entry.sequencer is None
    assert entry.version_id is None
    assert entry.order == "E#2024-05-01T12:00:00.000000Z"


def test_sequencers_of_different_lengths_compare_after_right_padding() -> None:
    # As integers 0xFF < 0x100, but S3 sequencers compare after right-padding: FF00 > 1000.
    assert order_value("FF", "") > order_value("100", "")
    assert order_value("00FF", "") == order_value("00ff0000", "")
    assert order_value("0055AED6DCD90281E5", "") > order_value("0055AED6DCD90281E", "")


def test_an_unsequenced_event_orders_before_any_sequenced_one() -> None:
    assert order_value(None, "2999-12-31T23:59:59Z") < order_value("0", "")


@pytest.mark.parametrize(
    ("event_time", "normalised"),
    [
        ("2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00.000000Z"),
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000000Z"),
        ("2024-05-01T14:00:00.5+02:00", "2024-05-01T12:00:00.500000Z"),
        ("2024-05-01T12:00:00.123456", "2024-05-01T12:00:00.123456Z"),
    ],
)
def test_event_time_is_normalised_to_fixed_width_utc(event_time: str, normalised: str) -> None:
    assert normalise_event_time(event_time) == normalised


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({**s3_record("k"), "eventSource": "aws:sqs"}, "eventSource"),
        ({**s3_record("k"), "s3": {"object": {"key": "k"}}}, "s3.bucket"),
        (s3_record("k", bucket=""), "s3.bucket.name"),
        (s3_record("", encode=False), "s3.object.key"),
        (s3_record("k", size=-1), "size"),
        (s3_record("k", size="12"), "size"),
        (s3_record("k", size=True), "size"),
        (s3_record("k", sequencer="not-hex"), "sequencer"),
        (s3_record("k", sequencer="F" * 65), "sequencer"),
        (s3_record("k", sequencer=None, event_time="yesterday"), "eventTime"),
        (s3_record("%FF", encode=False), "UTF-8"),
        ("not a record", "JSON object"),
    ],
)
def test_parse_record_rejects_what_it_cannot_record(record: Any, reason: str) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        parse_record(record)


def test_s3_test_event_is_recognised() -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-05-01T12:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "R",
        "HostId": "H",
    }
    assert is_s3_test_event(test_event)
    assert not is_s3_test_event({"Records": [s3_record("k")]})


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({}, "event has no Records"),
        ({"detail": {}}, "event has no Records"),
        # The reason says what is wrong with the Records there are, not that there are none.
        ({"Records": []}, "event's Records is empty"),
        ({"Records": "x"}, "event's Records is a str, not a list"),
        ({"Records": {"s3": {}}}, "event's Records is a dict, not a list"),
    ],
)
def test_event_without_records_is_not_an_s3_notification(
    event: dict[str, Any], reason: str
) -> None:
    with pytest.raises(NotAnS3NotificationError) as raised:
        event_records(event)
    assert str(raised.value).startswith(reason)


def test_bad_record_is_reported_and_later_records_still_processed() -> None:
    writer = InMemoryWriter(fail_on="throttled.txt")
    records = [
        s3_record("first.txt"),
        {**s3_record("no-key"), "s3": {"bucket": {"name": BUCKET}, "object": {"size": 1}}},
        s3_record("throttled.txt"),
        s3_record("last file.txt"),
    ]
    result = process_records(records, writer)
    assert sorted(writer.items) == ["first.txt", "last file.txt"]
    assert [(f.index, f.key) for f in result.failures] == [(1, None), (2, "throttled.txt")]
    assert "s3.object.key" in result.failures[0].reason
    assert result.summary() == {"recorded": 2, "skipped": 0, "failed": 2}


def test_duplicates_and_stale_events_are_skipped_not_failed() -> None:
    writer = InMemoryWriter()
    newer, older = s3_record("k", sequencer="0B"), s3_record("k", sequencer="0A")
    result = process_records([newer, newer, older], writer)
    assert len(result.recorded) == 1
    assert len(result.duplicates) == 1
    assert len(result.stale) == 1
    assert result.failures == []
    assert writer.items["k"].sequencer == "0B"
