"""`python -m sandbox` refuses bad input in one line with exit status 2, and says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import arguments
from sandbox.cli import main
from tests.conftest import REPOSITORY_ROOT, RunPython


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["demo", "--dynamodb-error-rate", "2"], "'2' is not a share: give a number from 0 to 1"),
        (["demo", "--dynamodb-error-rate", "-1"], "'-1' is not a share"),
        (["up", "--dynamodb-error-rate", "nan"], "'nan' is not a share"),
        (["demo", "--duplicate-rate", "1.5"], "'1.5' is not a share"),
        (["up", "--duplicate-rate", "inf"], "'inf' is not a share"),
        (["demo", "--retry-delay", "-1"], "'-1' is not a delay: give seconds, 0 or more"),
        (["demo", "--retry-delay", "nan"], "'nan' is not a delay"),
        (["up", "--retry-delay", "inf"], "'inf' is not a delay"),
        (["demo", "--retry-delay", "soon"], "'soon' is not a number"),
        (["up", "--port", "99999"], "'99999' is not a port: give 1 to 65535, or 0 for a free one"),
        (["up", "--port", "-1"], "'-1' is not a port"),
        (["faults", "--duplicate-rate", "7"], "'7' is not a share"),
        (["no-such-command"], "invalid choice"),
        (["drill", "--uploads-per-minute", "nan"], "'nan' is not a traffic rate"),
        (["drill", "--uploads-per-minute", "inf"], "'inf' is not a traffic rate"),
        (["drill", "--uploads-per-minute", "1e9"], "at most 10,000"),
        (["drill", "--uploads-per-minute", "0"], "'0' is not a traffic rate"),
        (["drill", "--uploads-per-minute", "many"], "'many' is not a number"),
        (["drill", "--background-errors", "nan"], "'nan' is not a share"),
        (["drill", "--background-errors", "1.5"], "'1.5' is not a share"),
        (["drill", "--fault", "errors:nan"], "the share must be between 0 and 1"),
        (["drill", "--fault", "latency:nan"], "the latency must be 0 to 900000 milliseconds"),
        (["drill", "--fault", "latency:inf"], "the latency must be 0 to 900000"),
        (["drill", "--fault", "latency:1e12"], "the latency must be 0 to 900000"),
        (["drill", "--fault", "boom"], "use errors:SHARE (0-1), latency:MS, crash or keys:GLOB"),
    ],
)
def test_bad_option_values_are_one_line_usage_errors(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_usage_error(argv, says, capsys)


@pytest.mark.parametrize(
    "command", [["drill", "--json"], ["drill", "--dashboard"], ["demo", "--dashboard"]]
)
def test_output_paths_are_checked_before_the_run(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused by the parser: the run (minutes of it) never starts, so nothing is lost.
    assert_usage_error([*command, str(tmp_path)], "is a directory: give a file name in it", capsys)
    (tmp_path / "a-file").write_text("not a folder")
    unwritable = tmp_path / "a-file" / "out.html"
    assert_usage_error([*command, str(unwritable)], "can't make the folder", capsys)


def test_an_output_file_in_a_folder_not_made_yet_is_accepted_and_its_folder_made(
    tmp_path: Path,
) -> None:
    # `make demo` on a fresh clone writes .sandbox/dashboard.html before .sandbox/ exists.
    path = tmp_path / ".sandbox" / "dashboard.html"
    assert arguments.output_file(str(path)) == path
    assert path.parent.is_dir()


def assert_usage_error(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert says in line
    assert line.endswith("--help`)")


@pytest.mark.parametrize("package", ["boto3", "moto"])
def test_run_outside_the_projects_environment_says_so_in_one_line(
    tmp_path: Path, run_python: RunPython, cdk_out: Path, package: str
) -> None:
    # A Python whose boto3 or moto can't be imported (another version, or none), as when
    # `python -m sandbox` runs without `.venv` activated: one line, no traceback. boto3
    # fails as the command starts; moto in the emulator's own process, as the sandbox starts.
    fake = tmp_path / "fake" / package
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not the version the project pins')\n")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{REPOSITORY_ROOT}"}

    result = run_python("-m", "sandbox", "demo", "--cdk-out", str(cdk_out), cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # The error is one line: the last, after at most the line saying the sandbox starts.
    *before, line = result.stderr.splitlines()
    assert len(before) <= 1
    assert "not the version the project pins" in line
    assert "source .venv/bin/activate" in line
