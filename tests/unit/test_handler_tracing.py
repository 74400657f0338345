"""The handler's X-Ray trace as the X-Ray daemon receives it.

A fresh interpreter runs the handler as Lambda starts it (``LAMBDA_TASK_ROOT`` set,
tracing on, a sampled ``_X_AMZN_TRACE_ID`` per invocation) against a moto table, and
the X-Ray SDK sends its documents to a UDP socket this test reads, as the daemon would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import contract
from handler import tracing
from local_aws import FAKE_CREDENTIALS, FakeLambdaContext
from tests.unit.conftest import REGION, SERVICE_NAME, TABLE_NAME, s3_event, s3_record

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tracing on (as in Lambda), and nothing of a developer's own AWS set-up.
DROPPED = {
    "POWERTOOLS_TRACE_DISABLED",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "_X_AMZN_TRACE_ID",
}
TRACE_WITH_AN_INVALID_RECORD = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_WITH_A_REFUSED_WRITE = "1-5759e988-bd862e3fe1be46a994272794"
TRACE_WITH_ONE_RECORD = "1-5759e988-bd862e3fe1be46a994272795"
UNTRACED = "1-5759e988-bd862e3fe1be46a994272796"
# Run in the child: three invocations, one trace each.
PROBE = f"""
import os
from moto import mock_aws
import boto3
import contract
from local_aws import FakeLambdaContext, create_ledger_table

def invoke(trace_id, *keys_and_sizes, sampled=1):
    header = f"Root={{trace_id}};Parent=53995c3f42cd8ad8;Sampled={{sampled}}"
    os.environ["_X_AMZN_TRACE_ID"] = header
    records = [
        contract.s3_object_created_record("uploads", key, size=size, sequencer="0A")
        for key, size in keys_and_sizes
    ]
    try:
        app.lambda_handler(contract.s3_notification(*records), FakeLambdaContext())
    except app.BatchFailedError:
        pass

with mock_aws():
    client = boto3.client("dynamodb", region_name="{REGION}")
    create_ledger_table(client, "{TABLE_NAME}")
    import handler.app as app
    invoke("{TRACE_WITH_ONE_RECORD}", ("one.txt", 1))
    invoke("{UNTRACED}", ("untraced.txt", 1), sampled=0)
    invoke("{TRACE_WITH_AN_INVALID_RECORD}", ("a.txt", 1), ("bad.txt", -1), ("b.txt", 2))
    client.delete_table(TableName="{TABLE_NAME}")
    invoke("{TRACE_WITH_A_REFUSED_WRITE}", ("c.txt", 3))
"""


def _entities(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A segment or subsegment document and every subsegment nested in it."""
    yield document
    for child in document.get("subsegments", []):
        yield from _entities(child)


def _received(daemon: socket.socket) -> list[dict[str, Any]]:
    """Every document the daemon got: a JSON header line, then the document."""
    documents: list[dict[str, Any]] = []
    daemon.setblocking(False)
    while True:
        try:
            datagram = daemon.recv(65536)
        except BlockingIOError:
            return documents
        header, body = datagram.decode("utf-8").split("\n", 1)
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def run_as_lambda(probe: str, daemon_address: str) -> str:
    """Run ``probe`` in a fresh interpreter set up as Lambda starts the function; its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "LAMBDA_TASK_ROOT": str(REPO_ROOT),
            "AWS_XRAY_DAEMON_ADDRESS": daemon_address,
            "AWS_DEFAULT_REGION": REGION,
            contract.TABLE_NAME_ENV: TABLE_NAME,
            contract.POWERTOOLS_SERVICE_NAME_ENV: SERVICE_NAME,
        }
    )
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and code, no shell
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def probe() -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """The probe's traces ({trace id: every segment and subsegment the handler sent for
    it}) and the EMF lines it printed, one per invocation, in order."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        host, port = daemon.getsockname()
        stdout = run_as_lambda(PROBE, f"{host}:{port}")
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for document in _received(daemon):
            by_trace.setdefault(document["trace_id"], []).extend(_entities(document))
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return by_trace, [line for line in lines if "_aws" in line]


@pytest.fixture(scope="module")
def traces(
    probe: tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    return probe[0]


def test_each_emf_line_names_the_trace_that_was_sent_and_an_untraced_one_none(
    probe: tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]],
) -> None:
    # The runbooks go from a key on the EMF line to its trace by this id.
    sent, emf = probe
    named = [line.get("xray_trace_id") for line in emf]
    order = [TRACE_WITH_ONE_RECORD, UNTRACED, TRACE_WITH_AN_INVALID_RECORD]
    order.append(TRACE_WITH_A_REFUSED_WRITE)  # the probe's order of invocations
    assert named == [None if trace == UNTRACED else trace for trace in order]
    assert {name for name in named if name} == set(sent)


def dynamodb_subsegments(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entity for entity in entities if entity.get("namespace") == "aws"]


def test_a_one_record_invocation_has_one_dynamodb_subsegment_named_as_the_sdk_names_it(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    [subsegment] = dynamodb_subsegments(traces[TRACE_WITH_ONE_RECORD])
    assert subsegment["name"] == "dynamodb"
    assert subsegment["aws"] == {
        "operation": "PutItem",
        "region": REGION,
        "table_name": TABLE_NAME,
    }
    assert not {"error", "fault", "throttle", "cause"} & set(subsegment)
    # Straight under Lambda's function segment: no handler subsegment of Powertools' around
    # it (Lambda's segment already times the invocation); its annotations moved here.
    assert [e["name"] for e in traces[TRACE_WITH_ONE_RECORD] if e.get("type") == "subsegment"] == [
        "dynamodb"
    ]
    assert subsegment["annotations"] == {
        "records": 1,
        "recorded": 1,
        "skipped": 0,
        "failed": 0,
        "ColdStart": True,
        "Service": SERVICE_NAME,
    }
    assert "metadata" not in subsegment


def test_only_the_first_invocation_of_an_environment_is_annotated_as_a_cold_start(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    later = [TRACE_WITH_AN_INVALID_RECORD, TRACE_WITH_A_REFUSED_WRITE]
    for trace in later:
        [subsegment] = dynamodb_subsegments(traces[trace])
        assert subsegment["annotations"]["ColdStart"] is False


def test_a_failed_invocation_keeps_its_failures_on_the_dynamodb_subsegment(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    [subsegment] = dynamodb_subsegments(traces[TRACE_WITH_A_REFUSED_WRITE])
    [exception] = subsegment["cause"]["exceptions"]
    assert exception["type"] == "LedgerWriteError"


def test_every_record_of_an_invocation_shares_one_subsegment_and_an_invalid_one_is_listed(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    [subsegment] = dynamodb_subsegments(traces[TRACE_WITH_AN_INVALID_RECORD])
    counts = {key: subsegment["annotations"][key] for key in ("records", "recorded", "failed")}
    assert counts == {"records": 3, "recorded": 2, "failed": 1}
    [failure] = subsegment["metadata"][SERVICE_NAME]["failures"]
    assert (failure["record_index"], failure["key"]) == (1, "bad.txt")
    assert "size" in failure["reason"]
    # The record never reached DynamoDB: DynamoDB is not flagged for it.
    assert not {"error", "fault", "throttle", "cause"} & set(subsegment)


def test_a_write_dynamodb_refused_flags_the_subsegment_with_its_request_id(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    [subsegment] = dynamodb_subsegments(traces[TRACE_WITH_A_REFUSED_WRITE])
    assert subsegment["annotations"]["failed"] == 1
    assert subsegment["error"] is True  # HTTP 400, as the SDK flags a client error
    assert subsegment["http"]["response"]["status"] == 400
    [exception] = subsegment["cause"]["exceptions"]
    assert exception["type"] == "LedgerWriteError"
    assert exception["remote"] is True
    assert "ResourceNotFoundException" in exception["message"]
    [failure] = subsegment["metadata"][SERVICE_NAME]["failures"]
    assert failure["key"] == "c.txt"
    assert failure["dynamodb_request_id"]


def test_an_untraced_invocation_sends_nothing_to_the_daemon(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    assert UNTRACED not in traces
    assert len(traces) == 3  # the three traced invocations did send theirs


def test_no_library_is_patched_so_no_put_item_has_a_subsegment_of_its_own(
    traces: dict[str, list[dict[str, Any]]],
) -> None:
    for entities in traces.values():
        assert [e["name"] for e in dynamodb_subsegments(entities)] == ["dynamodb"]


def test_in_lambda_tracing_patches_no_library() -> None:
    # Patching every library the X-Ray SDK knows would import them all at cold start for
    # nothing, and the botocore patch would trace each put_item on its own.
    probe = (
        "import handler.app\n"
        "from aws_xray_sdk.core import patcher\n"
        "print(sorted(patcher._PATCHED_MODULES))\n"
    )
    assert run_as_lambda(probe, "127.0.0.1:2000").strip() == "[]"


class SpySubsegment:
    """Records what the handler describes on its subsegment."""

    def __init__(self) -> None:
        self.aws: dict[str, Any] = {}
        self.annotations: dict[str, Any] = {}

    def set_aws(self, aws_meta: dict[str, Any]) -> None:
        self.aws = aws_meta

    def put_http_meta(self, key: str, value: Any) -> None:
        raise AssertionError("no write failed")

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        raise AssertionError("no record failed")

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        raise AssertionError("no write failed")


class SpyRecorder:
    """An X-Ray recorder whose sampling decision the test makes; counts subsegments."""

    def __init__(self, sampled: bool) -> None:
        self.sampled = sampled
        self.opened: list[tuple[str, str]] = []
        self.subsegment = SpySubsegment()

    def is_sampled(self) -> bool:
        return self.sampled

    @contextmanager
    def in_subsegment(self, name: str, *, namespace: str) -> Iterator[SpySubsegment]:
        self.opened.append((name, namespace))
        yield self.subsegment


@pytest.mark.parametrize(
    ("sampled", "opened"),
    [(False, []), (True, [("dynamodb", "aws")])],
    ids=["unsampled", "sampled"],
)
def test_the_writes_get_a_subsegment_only_when_the_invocation_is_sampled(
    app: ModuleType,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    sampled: bool,
    opened: list[tuple[str, str]],
) -> None:
    # Most invocations in AWS are not sampled: they skip the SDK's dummy subsegment.
    recorder = SpyRecorder(sampled)
    monkeypatch.setattr(app, "recorder", recorder)
    header = f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled={sampled:d}"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    event = s3_event(s3_record("a.txt"), s3_record("b.txt"))
    assert app.lambda_handler(event, lambda_context) == {"recorded": 2, "skipped": 0, "failed": 0}
    assert recorder.opened == opened
    if sampled:
        assert recorder.subsegment.annotations["recorded"] == 2


class AskedRecorder:
    """A recorder that answers ``sampled`` and counts how often it was asked."""

    def __init__(self, sampled: bool) -> None:
        self.sampled = sampled
        self.asked = 0

    def is_sampled(self) -> bool:
        self.asked += 1
        return self.sampled

    def in_subsegment(self, name: str, *, namespace: str) -> Any:
        raise AssertionError("not used here")


ROOT_AND_PARENT = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"


@pytest.mark.parametrize(
    "header",
    [None, "", f"{ROOT_AND_PARENT};Sampled=0", f"{ROOT_AND_PARENT};Sampled=?", ROOT_AND_PARENT],
    ids=["no header", "empty", "Sampled=0", "Sampled=?", "no decision"],
)
def test_a_header_that_does_not_say_sampled_is_untraced_without_asking_the_recorder(
    header: str | None,
) -> None:
    # The SDK would build a facade segment to give the same answer.
    recorder = AskedRecorder(sampled=True)
    assert tracing.is_traced(recorder, header) is False
    assert recorder.asked == 0


@pytest.mark.parametrize("decision", [True, False], ids=["recorder samples", "tracing off"])
def test_a_header_that_says_sampled_is_left_to_the_recorder(decision: bool) -> None:
    # The recorder also knows whether tracing is off (POWERTOOLS_TRACE_DISABLED).
    recorder = AskedRecorder(sampled=decision)
    assert tracing.is_traced(recorder, f"{ROOT_AND_PARENT};Sampled=1") is decision
    assert recorder.asked == 1
