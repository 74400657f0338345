"""The warm worker invokes as Lambda's runtime would: a trace header per invocation,
sampled unless the batch asks for untraced invocations."""

from __future__ import annotations

import importlib
import io
import json
import re
from pathlib import Path

import pytest

from bench.worker import CountingSink, serve, trace_header

# AWS X-Ray Developer Guide, "Tracing header": Root=1-<8 hex time>-<24 hex>, Parent=<16 hex>.
HEADER = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=([01])")
RECORDING_HANDLER = """
import os

seen = []


def lambda_handler(event, context):
    seen.append(os.environ["_X_AMZN_TRACE_ID"])
"""


@pytest.mark.parametrize(("sampled", "flag"), [(True, "1"), (False, "0")])
def test_trace_header_has_lambdas_shape_and_says_whether_sampled(sampled: bool, flag: str) -> None:
    header = trace_header(sampled=sampled)
    match = HEADER.fullmatch(header)
    assert match is not None, header
    assert match.group(1) == flag
    assert trace_header(sampled=sampled) != header  # a new trace each invocation


def test_a_batch_is_sampled_unless_it_asks_for_untraced_invocations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "recording_handler.py").write_text(RECORDING_HANDLER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)  # the worker sets it; undone after
    requests = io.StringIO(
        "\n".join(
            json.dumps(request)
            for request in (
                {"records": 1, "events": 2},
                {"records": 1, "events": 2, "traced": False},
                {"records": 1, "events": 1, "traced": True},
            )
        )
        + "\n"
    )
    replies = io.StringIO()
    serve("recording_handler", requests, replies, CountingSink())

    seen = importlib.import_module("recording_handler").seen
    flags = [match.group(1) for match in map(HEADER.fullmatch, seen) if match]
    assert flags == ["1", "1", "0", "0", "1"]
    answers = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert answers[0] == {"ready": "recording_handler"}
    assert [len(answer["event_cpu_ns"]) for answer in answers[1:]] == [2, 2, 1]
