"""Fixtures shared by the suites that need the app synthesized (e2e, bench)."""

from __future__ import annotations

import os
from pathlib import Path

import aws_cdk as cdk
import pytest

from config import constants as c
from config.settings import cdk_json_context, load_app_config
from service.stage import LedgerStage

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app as `make synth` builds it, in a temporary directory (not the working tree's)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    # The CLI turns asset metadata on; the sandbox finds the handler's asset through it.
    context = {**cdk_json_context(), "aws:cdk:enable-asset-metadata": True}
    app = cdk.App(outdir=str(outdir), context=context)
    config = load_app_config(app.node.try_get_context)
    LedgerStage(
        app, f"{c.STACK_PREFIX}-{config.dev_stage.name}", stage=config.dev_stage, app_config=config
    )
    app.synth()
    return outdir
