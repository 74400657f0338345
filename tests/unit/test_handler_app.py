"""The Lambda function end to end against a moto ledger table."""

from __future__ import annotations

import gc
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidationDecorator

import contract
from handler.ledger import BatchFailedError, NotAnS3NotificationError
from local_aws import FakeLambdaContext
from sandbox.runtime import FunctionIdentity, failure_record
from tests.unit.conftest import (
    BUCKET,
    NAMESPACE,
    REQUEST_ID,
    STAGE_NAME,
    follow_captured_stdout,
    output_lines,
    s3_event,
    s3_record,
    stored,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY_1024_BYTES = "k/" + "é" * 511  # 2 + 511 * 2 = 1024 UTF-8 bytes
# The ordering value of s3_record's default sequencer (handler/ledger.py).
ORDER_1 = "S#" + "0055AED6DCD90281E5".ljust(64, "0")


def scan(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = table.scan(ConsistentRead=True)["Items"]
    return items


@pytest.mark.parametrize(
    "key",
    [
        "my file.txt",
        "a+b.txt",
        "literal %2B and %20.txt",
        "café/naïve ✓ 日本語 🎉.txt",
        "deep/nested/path/to/file.csv",
        "  leading and trailing spaces  ",
        KEY_1024_BYTES,
    ],
)
def test_object_is_recorded_under_its_decoded_key(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext, key: str
) -> None:
    result = app.lambda_handler(s3_event(s3_record(key)), lambda_context)
    assert result == {"recorded": 1, "skipped": 0, "failed": 0}
    assert [item["filename"] for item in scan(ledger_table)] == [key]


def test_slash_is_decoded_whether_or_not_s3_escaped_it(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    event = s3_event(
        s3_record("dir%2Fa.txt", encode=False, sequencer="01"),
        s3_record("dir/b.txt", encode=False, sequencer="02"),
    )
    app.lambda_handler(event, lambda_context)
    assert sorted(item["filename"] for item in scan(ledger_table)) == ["dir/a.txt", "dir/b.txt"]


def test_item_has_the_contract_attributes(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    record = s3_record("report.pdf", size=2048, sequencer="0055AED6DCD90281E5", version_id="v7")
    app.lambda_handler(s3_event(record), lambda_context)
    assert stored(ledger_table, "report.pdf") == {
        "filename": "report.pdf",
        "bucket": BUCKET,
        "size": Decimal(2048),
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "event_time": "2024-05-01T12:00:00.000Z",
        "event_name": "ObjectCreated:Put",
        "version_id": "v7",
        "sequencer": "0055AED6DCD90281E5",
        "sequencer_order": ORDER_1,
    }


def test_item_without_sequencer_or_version_omits_them(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    app.lambda_handler(
        s3_event(s3_record("plain.txt", sequencer=None, version_id=None)), lambda_context
    )
    item = stored(ledger_table, "plain.txt")
    assert item is not None
    assert "sequencer" not in item
    assert "version_id" not in item


def test_repeated_event_changes_nothing(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    event = s3_event(s3_record("once.txt"))
    app.lambda_handler(event, lambda_context)
    before = scan(ledger_table)
    assert app.lambda_handler(event, lambda_context) == {"recorded": 0, "skipped": 1, "failed": 0}
    assert scan(ledger_table) == before


def test_older_event_never_overwrites_newer(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    newer = s3_record("doc.txt", size=2, etag="new", sequencer="0055AED6DCD90281E6")
    older = s3_record("doc.txt", size=1, etag="old", sequencer="0055AED6DCD90281E5")
    app.lambda_handler(s3_event(newer), lambda_context)
    result = app.lambda_handler(s3_event(older), lambda_context)
    assert result == {"recorded": 0, "skipped": 1, "failed": 0}
    item = stored(ledger_table, "doc.txt")
    assert item is not None
    assert (item["etag"], item["size"]) == ("new", 2)


def test_newer_event_overwrites_older(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    older = s3_record("doc.txt", etag="old", sequencer="0055AED6DCD90281E5")
    newer = s3_record("doc.txt", etag="new", sequencer="0055AED6DCD90281E6")
    app.lambda_handler(s3_event(older), lambda_context)
    app.lambda_handler(s3_event(newer), lambda_context)
    item = stored(ledger_table, "doc.txt")
    assert item is not None
    assert item["etag"] == "new"


def test_sequencers_of_different_lengths_are_compared_after_right_padding(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    # 0x100 > 0xFF as numbers, but S3 orders them as 1000 < FF00: "FF" is the newer event.
    newer = s3_record("pad.txt", etag="newer", sequencer="FF")
    older = s3_record("pad.txt", etag="older", sequencer="100")
    app.lambda_handler(s3_event(newer, older), lambda_context)
    item = stored(ledger_table, "pad.txt")
    assert item is not None
    assert item["etag"] == "newer"


def test_events_without_sequencer_are_ordered_by_event_time(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    def unsequenced(etag: str, event_time: str) -> dict[str, Any]:
        return s3_record("t.txt", etag=etag, sequencer=None, event_time=event_time)

    later = unsequenced("later", "2024-05-01T12:00:01.000Z")
    earlier = unsequenced("earlier", "2024-05-01T12:00:00.999Z")
    same_instant_other_zone = unsequenced("later-again", "2024-05-01T14:00:01+02:00")
    result = app.lambda_handler(
        s3_event(later, earlier, later, same_instant_other_zone), lambda_context
    )
    assert result == {"recorded": 1, "skipped": 3, "failed": 0}
    item = stored(ledger_table, "t.txt")
    assert item is not None
    assert item["etag"] == "later"


def test_unsequenced_event_never_overwrites_a_sequenced_item(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    sequenced = s3_record("mix.txt", etag="sequenced", sequencer="01")
    unsequenced = s3_record(
        "mix.txt", etag="unsequenced", sequencer=None, event_time="2999-01-01T00:00:00Z"
    )
    app.lambda_handler(s3_event(sequenced, unsequenced), lambda_context)
    item = stored(ledger_table, "mix.txt")
    assert item is not None
    assert item["etag"] == "sequenced"


@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")  # nothing to count
def test_s3_test_event_is_ignored(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2024-05-01T12:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    result = app.lambda_handler(test_event, lambda_context)
    assert result["recorded"] == 0
    assert result["ignored"] == "s3:TestEvent"
    assert scan(ledger_table) == []


@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")  # nothing to count
def test_event_without_records_raises_clearly(
    app: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    with pytest.raises(NotAnS3NotificationError, match="not an S3 notification"):
        app.lambda_handler({"source": "aws.events", "detail": {}}, lambda_context)


@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")  # nothing to count
@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"source": "aws.events", "detail": {}}, "event has no Records"),
        (["not", "an", "object"], "event is a list, not a JSON object"),
    ],
    ids=["another service's event", "not a JSON object"],
)
def test_an_event_that_is_not_an_s3_notification_has_an_error_line_with_its_reason(
    app: ModuleType,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    event: Any,
    reason: str,
) -> None:
    # The runbooks group ERROR lines by `reason`: without one they fall in an empty group.
    follow_captured_stdout(app)
    with pytest.raises(NotAnS3NotificationError):
        app.lambda_handler(event, lambda_context)
    [line] = [line for line in output_lines(capsys) if line.get("level") == "ERROR"]
    assert line["message"] == "Event is not an S3 notification"
    assert line["reason"].startswith(reason)
    assert line["function_request_id"] == REQUEST_ID


def test_record_missing_its_key_fails_the_invocation(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    record = s3_record("k")
    del record["s3"]["object"]["key"]
    with pytest.raises(BatchFailedError, match=r"record 0 .*s3\.object\.key"):
        app.lambda_handler(s3_event(record), lambda_context)
    assert scan(ledger_table) == []


def test_bad_record_does_not_stop_the_others_then_invocation_fails(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    follow_captured_stdout(app)
    event = s3_event(
        s3_record("before.txt"),
        s3_record("bad size.txt", size="many"),
        s3_record("after.txt"),
    )
    with pytest.raises(BatchFailedError, match="1 of 3 records") as raised:
        app.lambda_handler(event, lambda_context)
    assert sorted(item["filename"] for item in scan(ledger_table)) == ["after.txt", "before.txt"]
    assert raised.value.result.summary() == {"recorded": 2, "skipped": 0, "failed": 1}

    lines = output_lines(capsys)
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["record_index"] == 1
    assert errors[0]["key"] == "bad size.txt"
    assert "size" in errors[0]["reason"]
    emf = next(line for line in lines if "_aws" in line)
    assert (emf["FilesRecorded"], emf["RecordFailures"]) == ([2.0], [1.0])


def test_retry_after_partial_failure_records_only_what_was_missing(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    good = s3_record("good.txt")
    with pytest.raises(BatchFailedError):
        app.lambda_handler(s3_event(good, s3_record("bad", size=-1)), lambda_context)
    fixed = app.lambda_handler(s3_event(good, s3_record("bad")), lambda_context)
    assert fixed == {"recorded": 1, "skipped": 1, "failed": 0}


def test_files_recorded_metric_is_emitted_as_emf(
    app: ModuleType, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    app.lambda_handler(s3_event(s3_record("a.txt"), s3_record("b.txt")), lambda_context)
    lines = output_lines(capsys)
    emf = [line for line in lines if "_aws" in line]
    assert len(emf) == 1
    directive = emf[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert {"Name": "FilesRecorded", "Unit": "Count"} in directive["Metrics"]
    assert emf[0]["FilesRecorded"] == [2.0]
    assert emf[0]["RecordFailures"] == [0.0]
    # Per stage, so two stages in one account never mix their business metrics.
    assert [sorted(d) for d in directive["Dimensions"]] == [["service", "stage"]]
    assert emf[0]["stage"] == STAGE_NAME


def emf_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF lines printed since the last read: one per invocation that counted."""
    return [line for line in output_lines(capsys) if "_aws" in line]


def test_the_emf_line_lists_what_was_recorded_with_the_request_id(
    app: ModuleType, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # The runbooks' Logs Insights queries unnest this list (one row per recorded object).
    keys = ["a.txt", "b c.txt", "d.txt"]
    app.lambda_handler(s3_event(*(s3_record(key) for key in keys)), lambda_context)
    [emf] = emf_lines(capsys)
    assert emf[app.RECORDED_FIELD] == [{"object_key": key, "order": ORDER_1} for key in keys]
    assert emf["FilesRecorded"] == [3.0]  # the count is on the same line
    assert emf[app.REQUEST_ID_FIELD] == REQUEST_ID


def test_a_recording_invocation_writes_one_line_the_emf_line(
    app: ModuleType, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Powertools line of its own per invocation cost CPU and ingestion on every upload.
    follow_captured_stdout(app)
    app.lambda_handler(s3_event(s3_record("a.txt")), lambda_context)
    [line] = output_lines(capsys)
    assert "_aws" in line
    assert line[app.RECORDED_FIELD] == [{"object_key": "a.txt", "order": ORDER_1}]


@pytest.mark.parametrize("sampled", ["1", "0"], ids=["traced", "untraced"])
def test_the_emf_line_names_the_trace_only_when_the_invocation_is_traced(
    app: ModuleType,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sampled: str,
) -> None:
    # An untraced invocation's trace id leads to no trace.
    monkeypatch.setattr(app.recorder, "is_sampled", lambda: sampled == "1")
    root = "1-5759e988-bd862e3fe1be46a994272793"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={root};Parent=53995c3f42cd8ad8;Sampled={sampled}")
    app.lambda_handler(s3_event(s3_record("a.txt")), lambda_context)
    [emf] = emf_lines(capsys)
    assert emf.get(app.TRACE_ID_FIELD) == (root if sampled == "1" else None)


def test_metadata_never_carries_into_the_next_invocations_line(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app.lambda_handler(s3_event(s3_record("seen.txt")), lambda_context)
    # Nothing to count: Powertools flushes nothing and keeps what it holds.
    with pytest.warns(UserWarning, match="No application metrics to publish"):
        app.lambda_handler({"Event": contract.S3_TEST_EVENT, "Bucket": BUCKET}, lambda_context)
    app.lambda_handler(s3_event(s3_record("seen.txt")), lambda_context)  # a duplicate
    first, second = emf_lines(capsys)
    assert [entry["object_key"] for entry in first[app.RECORDED_FIELD]] == ["seen.txt"]
    assert app.RECORDED_FIELD not in second
    assert second["DuplicatesSkipped"] == [1.0]


def test_skipped_and_failed_records_keep_a_line_each_and_are_not_listed_as_recorded(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app.lambda_handler(s3_event(s3_record("seen.txt")), lambda_context)
    follow_captured_stdout(app)
    capsys.readouterr()
    event = s3_event(s3_record("seen.txt"), s3_record("new.txt"), s3_record("bad", size=-1))
    with pytest.raises(BatchFailedError):
        app.lambda_handler(event, lambda_context)
    lines = output_lines(capsys)
    by_message: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_message.setdefault(line.get("message", "EMF"), []).append(line)
    assert [line[app.RECORDED_FIELD] for line in by_message["EMF"]] == [
        [{"object_key": "new.txt", "order": ORDER_1}]
    ]
    skipped = by_message["Skipped duplicate event"]
    assert [(line["object_key"], line["order"]) for line in skipped] == [("seen.txt", ORDER_1)]
    assert [line["key"] for line in by_message["Record could not be recorded"]] == ["bad"]
    assert {line["function_request_id"] for line in lines} == {REQUEST_ID}


def runbook_blocks() -> list[tuple[str, str]]:
    """(page name, fenced block) of every runbook, dedented as the operator copies it."""
    blocks: list[tuple[str, str]] = []
    for page in sorted((REPO_ROOT / "runbooks").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"^ *```\w*\n(.*?)^ *```", text, re.DOTALL | re.MULTILINE):
            blocks.append((page.name, textwrap.dedent(block)))
    return blocks


def runbook_queries_over_recorded_lists() -> list[str]:
    """Every fenced block of the runbooks that unnests the EMF line's list of recorded keys."""
    return [block for _, block in runbook_blocks() if "unnest" in block]


def log_fields_a_query_names(query: str) -> set[str]:
    """The log fields a Logs Insights query reads: shown, grouped by or compared in a filter.

    Without the names the query defines itself (`as version`), discovered `@` fields and
    function calls."""
    shown = re.findall(r"(?:display|fields|by) ([^|]*)", query)
    names = {name.strip() for names in shown for name in names.split(",")}
    names |= set(re.findall(r"(?:filter|and|or|not) +([\w.]+) *(?:!?=|like |in )", query))
    defined = set(re.findall(r" as (\w+)", query))
    return {
        name
        for name in names
        if name
        and " " not in name
        and "(" not in name
        and not name.startswith("@")
        and name.split(".")[0] not in defined
    }


def test_the_runbooks_recorded_queries_name_fields_the_emf_line_has(
    app: ModuleType,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A renamed field would leave those Logs Insights queries silently empty. Traced, so
    # the line carries every field a query may show.
    monkeypatch.setattr(app.recorder, "is_sampled", lambda: True)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    app.lambda_handler(s3_event(s3_record("a.txt")), lambda_context)
    [line] = emf_lines(capsys)
    queries = runbook_queries_over_recorded_lists()
    assert len(queries) >= 2  # runbooks/README.md and table-throttled-requests.md
    for query in queries:
        # The pre-filter finds the EMF lines (an array is no discovered field of its own);
        # then the list is unnested into one row per key.
        [prefiltered] = re.findall(r'filter @message like /"(\w+)":/', query)
        [(unnested, alias)] = re.findall(r"unnest line\.(\w+) into (\w+)", query)
        assert prefiltered == unnested == app.RECORDED_FIELD, query
        [entry] = line[unnested]
        assert set(re.findall(rf"\b{alias}\.(\w+)", query)) <= set(entry), query
        names = log_fields_a_query_names(query)
        assert {name for name in names if not name.startswith(f"{alias}.")} <= set(line), query


def runbook_field_lists_over_error_lines() -> list[set[str]]:
    """The log fields each runbook query over `level = "ERROR"` lines reads."""
    return [
        log_fields_a_query_names(block)
        for _, block in runbook_blocks()
        if 'level = "ERROR"' in block
    ]


def test_the_runbooks_error_queries_name_fields_the_error_lines_have(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A field no error line has shows as an empty column in Logs Insights, silently.
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
    follow_captured_stdout(app)
    with pytest.raises(BatchFailedError):  # a record that can't be parsed
        app.lambda_handler(s3_event(s3_record("bad", size=-1)), lambda_context)
    ledger_table.delete()
    with pytest.raises(BatchFailedError):  # a write DynamoDB refuses
        app.lambda_handler(s3_event(s3_record("a.txt")), lambda_context)
    errors = [line for line in output_lines(capsys) if line.get("level") == "ERROR"]
    assert len(errors) == 2
    carried = set().union(*errors)
    field_lists = runbook_field_lists_over_error_lines()
    assert len(field_lists) >= 3  # function-errors, canary-error-rate, table-system-errors
    for fields in field_lists:
        assert fields <= carried, fields


def test_nothing_recorded_lists_nothing(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = s3_event(s3_record("once.txt"))
    app.lambda_handler(event, lambda_context)
    capsys.readouterr()
    app.lambda_handler(event, lambda_context)
    [emf] = emf_lines(capsys)
    assert app.RECORDED_FIELD not in emf
    assert emf["FilesRecorded"] == [0.0]


def import_handler_in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A cold start: a fresh interpreter importing the handler with ``env``."""
    return subprocess.run(
        [sys.executable, "-c", "import handler.app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_table_name_fails_at_start_up_naming_the_variable() -> None:
    completed = import_handler_in_subprocess(
        {k: v for k, v in os.environ.items() if k != "TABLE_NAME"}
    )
    assert completed.returncode != 0
    assert "RuntimeError: TABLE_NAME is not set" in completed.stderr
    assert "TABLE_NAME environment variable" in completed.stderr


def test_empty_table_name_fails_at_start_up() -> None:
    completed = import_handler_in_subprocess({**os.environ, "TABLE_NAME": "  "})
    assert completed.returncode != 0
    assert "TABLE_NAME is not set" in completed.stderr


def test_handler_imports_with_table_name_set() -> None:
    completed = import_handler_in_subprocess(dict(os.environ))
    assert completed.returncode == 0, completed.stderr


def test_dynamodb_error_is_a_record_failure_not_a_skip(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    follow_captured_stdout(app)
    ledger_table.delete()
    with pytest.raises(BatchFailedError, match="ResourceNotFoundException"):
        app.lambda_handler(s3_event(s3_record("a.txt"), s3_record("b.txt")), lambda_context)
    errors = [line for line in output_lines(capsys) if line.get("level") == "ERROR"]
    assert [line["key"] for line in errors] == ["a.txt", "b.txt"]
    # DynamoDB's request id, for AWS Support (runbooks/table-system-errors.md).
    assert all(line["dynamodb_request_id"] for line in errors)


def test_the_pre_traffic_hooks_synthetic_upload_is_recorded_as_the_hook_expects(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    # The hook and the handler ship separately; this pins the contract between them.
    from hooks.pre_traffic import synthetic_s3_event

    key = f"{contract.HEALTHCHECK_KEY_PREFIX}d-EXAMPLE01"
    event = synthetic_s3_event(BUCKET, key, sequencer="0000018C2F3B9A7E4F")
    assert app.lambda_handler(event, lambda_context)["recorded"] == 1
    item = stored(ledger_table, key)
    assert item is not None
    assert item["sequencer"] == "0000018C2F3B9A7E4F"


def test_item_of_the_original_demos_schema_is_overwritten_by_the_next_event(
    app: ModuleType, ledger_table: Any, lambda_context: FakeLambdaContext
) -> None:
    # Issue 12's repro: an item without sequencer_order (backfill, original schema).
    ledger_table.put_item(Item={"filename": "report.pdf", "bucket": "b", "size": 10, "etag": "old"})
    record = s3_record("report.pdf", size=2048, etag="new", sequencer="0055AED6DCD90281E5")
    assert app.lambda_handler(s3_event(record), lambda_context) == {
        "recorded": 1,
        "skipped": 0,
        "failed": 0,
    }
    item = stored(ledger_table, "report.pdf")
    assert item is not None
    assert (item["size"], item["etag"], item["sequencer"]) == (2048, "new", "0055AED6DCD90281E5")


def test_init_leaves_the_collector_running_and_what_it_built_frozen(app: ModuleType) -> None:
    # The collector pauses only while the handler initialises (its cold start).
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_a_failed_init_leaves_the_collector_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE_NAME")
    sys.modules.pop("handler.app", None)
    with pytest.raises(RuntimeError, match="TABLE_NAME is not set"):
        importlib.import_module("handler.app")
    assert gc.isenabled()


def test_request_validation_is_left_to_dynamodb(app: ModuleType) -> None:
    # botocore's client-side pass (a validating wrapper around the request serializer) costs
    # ~0.1 ms per put; DynamoDB validates every request on arrival.
    assert not isinstance(app.repository._client._serializer, ParamValidationDecorator)


def runbook_queries_over_skipped_lines() -> list[str]:
    """Every runbook query over the `Skipped duplicate event` / `Skipped stale event` lines."""
    return [block for _, block in runbook_blocks() if "Skipped" in block]


def test_the_runbooks_skipped_queries_name_fields_the_skipped_lines_have(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A refused conditional write still consumes write capacity: table-throttled-requests.md
    # counts these lines as write attempts.
    newer = s3_record("doc.txt", sequencer="0055AED6DCD90281E6")
    older = s3_record("doc.txt", sequencer="0055AED6DCD90281E5")
    app.lambda_handler(s3_event(newer), lambda_context)
    follow_captured_stdout(app)
    capsys.readouterr()
    app.lambda_handler(s3_event(newer, older), lambda_context)  # a duplicate, then a stale one
    skipped = [line for line in output_lines(capsys) if "Skipped" in line.get("message", "")]
    assert {line["message"] for line in skipped} == {
        "Skipped duplicate event",
        "Skipped stale event",
    }
    queries = runbook_queries_over_skipped_lines()
    assert queries  # table-throttled-requests.md
    for query in queries:
        [listed] = re.findall(r"message in \[(.*?)\]", query)
        assert set(re.findall(r'"([^"]*)"', listed)) == {line["message"] for line in skipped}
        for line in skipped:
            assert log_fields_a_query_names(query) <= set(line), query


def test_the_runbooks_throttle_query_finds_a_throttled_write_under_its_decoded_key(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # DynamoDB's answer when the SDK's retries all met throttling (moto never throttles).
    key = "my file+1 é.txt"
    follow_captured_stdout(app)
    with Stubber(app.client) as stubber:
        stubber.add_client_error(
            "put_item",
            service_error_code="ProvisionedThroughputExceededException",
            service_message="The level of configured provisioned throughput for the table "
            "was exceeded.",
            http_status_code=400,
        )
        with pytest.raises(BatchFailedError):
            app.lambda_handler(s3_event(s3_record(key)), lambda_context)
    [error] = [line for line in output_lines(capsys) if line.get("level") == "ERROR"]
    queries = [
        block for _, block in runbook_blocks() if 'level = "ERROR"' in block and "Throttl" in block
    ]
    assert queries  # table-throttled-requests.md
    for query in queries:
        [pattern] = re.findall(r"reason like /(.*?)/", query)
        assert re.search(pattern, error["reason"]), (pattern, error["reason"])
        assert log_fields_a_query_names(query) <= set(error), query
    assert error["key"] == key


KEY_PLACEHOLDER = re.compile(r"<([^<>]*\bkey\b[^<>]*)>")


def test_every_key_a_runbook_command_takes_is_the_decoded_key() -> None:
    # Logs and ledger items carry the decoded key; S3 events (and so the failure queue) the
    # form-encoded one: a query given the encoded key finds nothing for `my file+1.txt`.
    pages_with_a_key: set[str] = set()
    for page, block in runbook_blocks():
        for placeholder in KEY_PLACEHOLDER.findall(block):
            assert placeholder == "decoded key", (page, block)
            pages_with_a_key.add(page)
    assert pages_with_a_key >= {"README.md", "failure-queue-not-empty.md"}
    # Each such page says how to get the decoded key from an encoded one.
    for page in pages_with_a_key:
        text = (REPO_ROOT / "runbooks" / page).read_text(encoding="utf-8")
        assert "unquote_plus" in text or "(failure-queue-not-empty.md#" in text, page


def run_bash(script: str, cwd: Path | None = None) -> str:
    """The stdout of a runbook's shell commands, run as the operator's bash runs them.

    They need jq, as the operator does: without it the test is skipped here and fails in
    CI (`.ci/run` installs it), as the browser tests do without Chromium.
    """
    bash = shutil.which("bash")
    assert bash, "the runbook tests need bash"
    if shutil.which("jq") is None:
        message = "the runbook tests run the runbooks' jq commands: apt-get install jq"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI installs it in .ci/run)")
        pytest.skip(message)
    completed = subprocess.run(  # noqa: S603 -- the runbooks' own commands, our test inputs
        [bash, "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def the_failure_queues_decoding_step() -> str:
    [block] = [
        block
        for page, block in runbook_blocks()
        if page == "failure-queue-not-empty.md" and "unquote_plus" in block
    ]
    return block


def test_the_failure_queues_decoding_step_gives_the_keys_the_logs_and_ledger_have(
    app: ModuleType,
    ledger_table: Any,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # S3's form encoding: `+` is a space, then %XX are UTF-8 bytes.
    assert s3_record("my file+1 é.txt")["s3"]["object"]["key"] == "my+file%2B1+%C3%A9.txt"
    keys = ["my file+1 é.txt", "literal %2B and %20.txt", "café/naïve ✓ 日本語 🎉.txt", "a.txt"]
    not_utf8 = s3_record("%FF.txt", encode=False, sequencer="01")  # the logs keep it as sent
    event = s3_event(*(s3_record(key) for key in keys), not_utf8)
    follow_captured_stdout(app)
    with pytest.raises(BatchFailedError):
        app.lambda_handler(event, lambda_context)
    [error] = [line for line in output_lines(capsys) if line.get("level") == "ERROR"]
    identity = FunctionIdentity("upload-ledger", "7", "arn:aws:lambda:::function:f:live", "g")
    message = failure_record(event, identity, condition="RetriesExhausted", attempts=3, answer=None)
    # What step 2's `aws sqs receive-message --output json > failures.json` saves.
    (tmp_path / "failures.json").write_text(
        json.dumps({"Messages": [{"MessageId": "m-1", "Body": json.dumps(message)}]})
    )
    *decoded, undecodable = run_bash(the_failure_queues_decoding_step(), tmp_path).splitlines()
    assert decoded == keys
    assert sorted(decoded) == sorted(item["filename"] for item in scan(ledger_table))
    assert undecodable.split()[0] == error["key"] == "%FF.txt"


def test_the_failure_queues_ledger_check_quotes_any_decoded_key_for_dynamodb() -> None:
    # A key with `"` or `\` pasted into hand-written JSON would make the CLI refuse it.
    [block] = [block for _, block in runbook_blocks() if "get-item" in block]
    [command] = re.findall(r"\$\((jq -n [^)]*)\)", block)
    key = 'a "quoted" \\ back slash é.txt'
    quoted = run_bash(command.replace("'<decoded key>'", shlex.quote(key)))
    assert json.loads(quoted) == {contract.PARTITION_KEY: {"S": key}}
