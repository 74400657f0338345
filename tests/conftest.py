"""Fixtures shared by the suites that need the app synthesized (e2e, bench)."""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
import pytest

from app import build_app
from config.settings import cdk_json_context

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


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
