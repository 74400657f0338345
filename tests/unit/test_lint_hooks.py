"""The pre-commit hook runs exactly the checks `make lint` runs, so the two never drift."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def _make_lint_commands() -> list[str]:
    makefile = (REPOSITORY_ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    # Each line: @$(HEARTBEAT) "label" -- $(BIN)/tool args
    return [line.split(" -- ", 1)[1].strip() for line in recipe.splitlines()[1:]]


def _pre_commit_entries() -> list[str]:
    config = (REPOSITORY_ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    return [
        entry.strip().replace(".venv/bin/", "$(BIN)/")
        for entry in re.findall(r"^\s+entry: (.+)$", config, flags=re.MULTILINE)
    ]


def test_pre_commit_runs_what_make_lint_runs() -> None:
    commands = _make_lint_commands()
    assert commands, "no commands found in the Makefile's lint target"
    assert _pre_commit_entries() == commands
