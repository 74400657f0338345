#!/usr/bin/env python3
"""CDK app: the developer's own stage, deployable directly (`make deploy`).

Configuration comes from cdk.json context; see config/settings.py for every key.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from config import constants as c
from config.settings import ConfigError, cdk_json_context, load_app_config
from service.stage import LedgerStage


def build_app(app: cdk.App) -> cdk.App:
    config = load_app_config(app.node.try_get_context)
    LedgerStage(
        app, f"{c.STACK_PREFIX}-{config.dev_stage.name}", stage=config.dev_stage, app_config=config
    )
    return app


def main() -> None:
    # The CDK CLI passes cdk.json's context itself; `python app.py` reads it here.
    context = None if "CDK_CONTEXT_JSON" in os.environ else cdk_json_context()
    app = cdk.App(context=context)
    try:
        build_app(app)
    except ConfigError as error:
        # A configuration mistake is the user's to fix: say what and how, no traceback.
        print(f"Configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
