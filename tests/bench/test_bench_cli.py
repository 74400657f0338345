"""`python -m bench` refuses bad arguments before measuring anything, and shows progress."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench.__main__ import _parse_args, _section

REPO_ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own interpreter and module, no shell
        [sys.executable, "-m", "bench", "--quick", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--output", "/"), "'/' is a directory: give a file name in it"),
        (("--output", "/proc/no-such-folder/x.json"), "can't make the folder"),
        (("--cdk-out", "/no-such-cdk-out"), "holds no synthesized app (no manifest.json)"),
    ],
)
def test_a_bad_path_is_one_line_before_any_measurement(args: tuple[str, ...], says: str) -> None:
    completed = bench(*args)
    assert completed.returncode == 2
    assert completed.stdout == ""
    (last,) = [line for line in completed.stderr.splitlines() if "error:" in line]
    assert says in last
    assert "Traceback" not in completed.stderr
    assert "bench: warm cost" not in completed.stderr  # nothing was measured


def test_without_the_burst_no_synthesized_app_is_needed(tmp_path: Path) -> None:
    # --skip-burst: the one section that reads cdk.out is left out, so its absence is fine.
    args = _parse_args(["--skip-burst", "--cdk-out", str(tmp_path), "--output", "x.json"])
    assert args.skip_burst


def test_a_running_section_says_so_every_interval(capsys: pytest.CaptureFixture[str]) -> None:
    with _section("a slow section", interval=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "bench: a slow section..."
    assert sum(line.startswith("... a slow section: still running") for line in lines) >= 3
    assert lines[-1].strip().startswith("done in ")


def test_the_default_output_folder_is_made_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh clone has no bench-results/: the JSON must still have somewhere to go.
    monkeypatch.setattr(bench_main, "DEFAULT_OUTPUT", tmp_path / "bench-results" / "latest.json")
    args = _parse_args(["--skip-burst"])
    assert args.output == tmp_path / "bench-results" / "latest.json"
    assert args.output.parent.is_dir()
