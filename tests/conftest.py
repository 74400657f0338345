"""Fixtures shared by the suites: the app synthesized (e2e, bench), our own Python run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# Before aws_cdk is imported: jsii checks the Node version at import and prints its
# end-of-life banner (as Python bytes) unless this is set. `make` exports it; a plain
# `pytest` gets it here, once for every suite.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest
from hypothesis import settings

from app import build_app
from config.settings import cdk_json_context

# Hypothesis's per-example deadline is a timing assertion: on a loaded 2-core CI machine a
# slow example fails a correct property. Speed is measured by `make bench`, not here.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
RunPython = Callable[..., subprocess.CompletedProcess[str]]


def run_command(
    command: list[str],
    *,
    cwd: Path = REPOSITORY_ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`command` in `cwd`, output captured as text; the caller checks the exit status."""
    return subprocess.run(  # noqa: S603 -- commands built by the tests themselves
        command,
        cwd=cwd,
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _run_python(
    *args: str, cwd: Path = REPOSITORY_ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """This interpreter with `args` (`-c ...`, `-m ...`) in `cwd`, output captured as text."""
    return run_command([sys.executable, *args], cwd=cwd, env=env)


@pytest.fixture
def run_python() -> RunPython:
    """Runs this interpreter in a fresh process: `run_python("-c", code, cwd=..., env=...)`."""
    return _run_python


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole app as `make synth` builds it (dev stage and pipeline), in a temporary
    directory rather than the working tree's cdk.out."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    # The CLI turns asset metadata on; the sandbox finds the handler's asset through it.
    context = {**cdk_json_context(), "aws:cdk:enable-asset-metadata": True}
    app = build_app(cdk.App(outdir=str(outdir), context=context))
    app.synth()
    return outdir
