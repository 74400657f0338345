"""scripts/heartbeat.py: a long build step says it started, that it lives, and how it ended."""

from __future__ import annotations

import sys

import pytest

from scripts.heartbeat import main, run


def test_a_silent_command_gets_a_line_every_interval_and_its_status_passes_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(3)"]

    status = run("slow step", command, interval=0.1)

    lines = capsys.readouterr().err.splitlines()
    assert status == 3
    assert lines[0] == "==> slow step"
    assert any(line.startswith("... slow step: still running (") for line in lines[1:-1])
    assert lines[-1].startswith("<== slow step: failed (exit status 3) in ")


def test_a_command_that_cannot_start_fails_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = run("missing tool", ["/nonexistent/tool"])

    assert status == 127
    assert "<== missing tool: cannot run /nonexistent/tool" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["label-without-command"]) == 2
    assert "usage: heartbeat.py LABEL -- COMMAND" in capsys.readouterr().err
