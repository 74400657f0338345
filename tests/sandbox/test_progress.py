"""The sandbox's progress line: its counts, and when it is written to a log file."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sandbox import cli
from sandbox.sandbox import _count


def test_progress_logs_a_line_only_when_the_counts_change(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter(float(second) for second in range(0, 100, 3))
    # The progress line reads only the clock from `time`: a stand-in that steps 3 s a call.
    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    progress = cli._Progress()
    for line in ["3 recorded", "3 recorded", "3 recorded", "4 recorded", "4 recorded"]:
        progress(line)

    assert capsys.readouterr().err.splitlines() == ["... 3 recorded", "... 4 recorded"]


@pytest.mark.parametrize(
    ("number", "expected"),
    [(0, "0 SDK retries"), (1, "1 SDK retry"), (2, "2 SDK retries")],
)
def test_an_irregular_plural(number: int, expected: str) -> None:
    assert _count(number, "SDK retry", "SDK retries") == expected


@pytest.mark.parametrize(("number", "expected"), [(1, "1 duplicate"), (3, "3 duplicates")])
def test_a_regular_plural(number: int, expected: str) -> None:
    assert _count(number, "duplicate") == expected
