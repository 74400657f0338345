"""Fixtures shared by the suites: the app synthesized (e2e, bench), our own Python run."""

from __future__ import annotations

import fcntl
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
def cdk_out(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The whole app as `make synth` builds it (dev stage and pipeline), in a temporary
    directory rather than the working tree's cdk.out.

    One synth per test session, not per pytest-xdist worker (each is ~15 s of jsii): the
    first worker synthesizes into the session's shared temporary folder under a file
    lock, the others wait for it and read the same files. Tests only read it (those that
    change an app copy it first).
    """
    # Each worker's base temp is <session's>/popen-gwN; without xdist it is the session's.
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    outdir = shared / "cdk.out"
    with (shared / "cdk.out.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (outdir / "manifest.json").is_file():
            _synth_into(outdir)
    return outdir


def _synth_into(outdir: Path) -> None:
    """Synthesize beside `outdir`, then rename: a failed synth leaves no half of one."""
    partial = outdir.with_name(f"{outdir.name}.partial-{os.getpid()}")
    # The CLI turns asset metadata on; the sandbox finds the handler's asset through it.
    context = {**cdk_json_context(), "aws:cdk:enable-asset-metadata": True}
    build_app(cdk.App(outdir=str(partial), context=context)).synth()
    partial.rename(outdir)
