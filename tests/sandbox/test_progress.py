"""The sandbox's progress line when stderr is a log file, not a terminal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sandbox import cli


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
