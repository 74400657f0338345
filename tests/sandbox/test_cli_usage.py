"""`python -m sandbox` refuses bad input in one line with exit status 2, and says why."""

from __future__ import annotations

import pytest

from sandbox.cli import main


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
    ],
)
def test_bad_option_values_are_one_line_usage_errors(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert says in line
    assert line.endswith("--help`)")
