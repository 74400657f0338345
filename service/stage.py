"""One deployable copy of the service: the stacks a pipeline stage (or a developer) deploys."""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage
from constructs import Construct

from config.settings import AppConfig, StageConfig
from service.stack import ServiceStack


class LedgerStage(Stage):
    """The service and its monitoring for one stage (dev, staging, production...)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        app_config: AppConfig,
        smoke_test_account: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=stage.account, region=stage.region),
            **kwargs,
        )
        # A pipeline stage names the pipeline's account, whose smoke step may then assume
        # the stage's smoke-test role; a developer's own stage has no such role.
        self.service = ServiceStack(
            self,
            "Service",
            stage=stage,
            alarm_emails=app_config.alarm_emails,
            smoke_test_account=smoke_test_account,
        )
