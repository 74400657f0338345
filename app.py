#!/usr/bin/env python3
"""CDK app: the developer's own stage, and the pipeline that deploys the shared stages.

- `UploadLedger-<devStage.name>/*`: the developer's own stage, deployable directly.
- `UploadLedgerPipeline`: the self-mutating pipeline (pipeline/), built unless
  `-c pipeline=false`; its keys are then required, and a missing one is an error.
cdk-nag checks every stack of both at synth. Configuration comes from cdk.json context;
see config/settings.py for every key.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

import contract
from compliance.nag import add_compliance_checks
from config.settings import (
    ConfigError,
    Context,
    cdk_json_context,
    load_app_config,
    load_pipeline_config,
    wants_pipeline,
)
from pipeline.stack import PipelineStack
from stage import LedgerStage


def build_app(app: cdk.App) -> cdk.App:
    # All of it, so keys nobody reads (typos) are found, with where each value came from.
    lookup = Context(app.node.get_all_context())
    config = load_app_config(lookup)
    LedgerStage(
        app,
        contract.stage_stack_prefix(config.dev_stage.name),
        stage=config.dev_stage,
        app_config=config,
    )
    if wants_pipeline(lookup):
        PipelineStack(
            app,
            contract.PIPELINE_STACK_NAME,
            pipeline_config=load_pipeline_config(lookup),
            app_config=config,
        )
    add_compliance_checks(app)
    return app


def main() -> None:
    # The CDK CLI passes cdk.json's context itself; `python app.py` reads it here.
    context = None if "CDK_CONTEXT_JSON" in os.environ else cdk_json_context()
    app = cdk.App(context=context)
    try:
        build_app(app)
    except ConfigError as error:
        # A configuration mistake is the user's to fix: say what and how, no traceback.
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", []))
        print(f"Configuration error: {error}{notes}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
