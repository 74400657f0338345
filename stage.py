"""One deployable copy of the service: the stacks a pipeline stage (or a developer) deploys.

Above the stacks it assembles (service/, monitoring/), below the app and the pipeline that
deploy it: the imports only ever point down.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage
from constructs import Construct

from config.settings import AppConfig, StageConfig
from monitoring.stack import MonitoringStack
from service.alarms import RunbookLinks
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
        self._smoke_test_account = smoke_test_account
        self.service = self._build_service(stage, app_config)
        # Only once the service stack is complete: its constructor registers every alarm,
        # and the dashboard's alarm status widget lists them at synth time.
        self.monitoring = self._build_monitoring(self.service)

    def _build_service(self, stage: StageConfig, app_config: AppConfig) -> ServiceStack:
        return ServiceStack(
            self,
            "Service",
            stage=stage,
            runbooks=RunbookLinks(repository=app_config.repository, branch=app_config.branch),
            alarm_emails=app_config.alarm_emails,
            smoke_test_account=self._smoke_test_account,
        )

    def _build_monitoring(self, service: ServiceStack) -> MonitoringStack:
        return MonitoringStack(self, "Monitoring", service=service)
