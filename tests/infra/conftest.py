"""Synthesizes the stacks once per session; tests assert on the CloudFormation they produce."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from config.settings import cdk_json_context, load_app_config
from stage import LedgerStage


def build_stage(
    stage_class: type[LedgerStage] = LedgerStage, **context_overrides: Any
) -> LedgerStage:
    """A dev stage synthesized from cdk.json's context, with overrides for one test.

    `stage_class` lets a test extend a build step (a LedgerStage subclass) and still get
    the real stage wiring.
    """
    context = {**cdk_json_context(), **context_overrides}
    app = cdk.App(context=context)
    config = load_app_config(app.node.try_get_context)
    return stage_class(app, "Test", stage=config.dev_stage, app_config=config)


@pytest.fixture(scope="session")
def stage() -> LedgerStage:
    return build_stage(
        devStage={"name": "test", "account": "111111111111", "region": "eu-central-1"},
        alarmEmails=["oncall@example.com"],
    )


@pytest.fixture(scope="session")
def service_template(stage: LedgerStage) -> Template:
    return Template.from_stack(stage.service)


def alarms_of(template: Template) -> dict[str, Any]:
    """{logical id: properties} of every CloudWatch alarm in `template`."""
    return {
        name: resource["Properties"]
        for name, resource in template.find_resources("AWS::CloudWatch::Alarm").items()
    }


def single_resource(template: Template, resource_type: str) -> tuple[str, Any]:
    """(logical id, resource) of the one resource of `resource_type`; fails if not one."""
    found = template.find_resources(resource_type)
    assert len(found) == 1, list(found)
    return next(iter(found.items()))
