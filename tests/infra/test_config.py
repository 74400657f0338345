"""Configuration errors: each missing or malformed key names itself and how to fix it."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from app import build_app
from config.settings import (
    ConfigError,
    cdk_json_context,
    load_app_config,
    load_pipeline_config,
    wants_pipeline,
)

GOOD_ARN = "arn:aws:codeconnections:eu-central-1:111111111111:connection/0000-aaaa"


def context(**overrides: Any) -> dict[str, Any]:
    values = {**cdk_json_context(), **overrides}
    return {key: value for key, value in values.items() if value is not None}


def pipeline_error(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(context(**overrides).get)
    return str(error.value)


def app_error(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as error:
        load_app_config(context(**overrides).get)
    return str(error.value)


def test_committed_cdk_json_is_valid_for_both_the_app_and_the_pipeline() -> None:
    config = load_pipeline_config(context().get)
    assert [stage.name for stage in config.stages] == ["staging", "production"]
    assert load_app_config(context().get).dev_stage.name == "dev"


@pytest.mark.parametrize(
    "key", ["githubConnectionArn", "githubRepository", "pipelineAccount", "pipelineRegion"]
)
def test_missing_pipeline_key_names_it_and_how_to_set_it(key: str) -> None:
    message = pipeline_error(**{key: None})
    assert message.startswith(f"cdk.json context '{key}': is missing.")
    assert f'Set "{key}" under "context" in cdk.json, or pass -c {key}=VALUE' in message


def test_missing_pipeline_key_suggests_the_dev_only_switch() -> None:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(context(githubConnectionArn=None).get)
    assert any("-c pipeline=false" in note for note in error.value.__notes__)


def test_malformed_connection_arn_shows_the_expected_form() -> None:
    message = pipeline_error(githubConnectionArn="arn:aws:s3:::my-bucket")
    assert "'githubConnectionArn': 'arn:aws:s3:::my-bucket' is not of the form" in message
    assert "arn:aws:codeconnections:REGION:ACCOUNT:connection/CONNECTION_ID" in message


def test_old_codestar_connections_arn_is_accepted() -> None:
    arn = GOOD_ARN.replace("codeconnections", "codestar-connections")
    assert load_pipeline_config(context(githubConnectionArn=arn).get).connection_arn == arn


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("pipelineAccount", "12345", "'pipelineAccount': '12345' is not of the form a 12-digit"),
        ("pipelineRegion", "Frankfurt", "'pipelineRegion': 'Frankfurt' is not of the form"),
        ("githubRepository", "no-slash", "'githubRepository': 'no-slash' is not of the form"),
    ],
)
def test_malformed_pipeline_value_names_key_and_value(key: str, value: str, expected: str) -> None:
    assert expected in pipeline_error(**{key: value})


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"name": "qa", "account": "1234", "region": "eu-central-1"}, "'stages[0].account'"),
        ({"name": "qa", "account": "111111111111", "region": "mars-1"}, "'stages[0].region'"),
        ({"name": "QA!", "account": "111111111111", "region": "eu-central-1"}, "'stages[0].name'"),
        ({"account": "111111111111", "region": "eu-central-1"}, "'stages[0].name': is missing"),
        ("staging", "'stages[0]': must be an object with name, account and region"),
    ],
)
def test_malformed_stage_names_its_position_and_the_top_level_key(
    stage: Any, expected: str
) -> None:
    message = pipeline_error(stages=[stage])
    assert expected in message
    assert 'Set "stages" under "context" in cdk.json' in message


@pytest.mark.parametrize("stages", [[], {"name": "staging"}, "none", None])
def test_stages_must_be_a_non_empty_list(stages: Any) -> None:
    assert "'stages': must be a non-empty list of stages" in pipeline_error(stages=stages)


def test_bad_manual_approval_flag_is_rejected() -> None:
    stage = {"name": "qa", "account": "111111111111", "region": "eu-west-1", "manualApproval": 1}
    assert "'stages[0].manualApproval': 1 is not true or false" in pipeline_error(stages=[stage])


def test_duplicate_stage_names_are_listed() -> None:
    stage = {"name": "qa", "account": "111111111111", "region": "eu-west-1"}
    message = pipeline_error(stages=[stage, {**stage, "region": "eu-west-2"}])
    assert "'stages': stage names must be unique, repeated: ['qa']" in message


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        (["oncall@example.com", "not-an-address"], "'not-an-address' is not an e-mail address"),
        ("oncall@example.com", "'alarmEmails': must be a list of e-mail addresses"),
    ],
)
def test_bad_alarm_emails_are_named(emails: Any, expected: str) -> None:
    assert expected in app_error(alarmEmails=emails)


def test_json_passed_with_dash_c_is_parsed() -> None:
    # `cdk -c stages='[...]'` arrives as a string.
    stages = [{"name": "qa", "account": "111111111111", "region": "eu-west-1"}]
    config = load_pipeline_config(context(stages=json.dumps(stages)).get)
    assert [stage.region for stage in config.stages] == ["eu-west-1"]


def test_broken_json_passed_with_dash_c_says_so() -> None:
    message = pipeline_error(stages='[{"name": "qa",')
    assert re.search(r"'stages': is not valid JSON \(.+\)", message)


def test_pipeline_is_wanted_unless_switched_off() -> None:
    assert wants_pipeline(context().get) is True
    assert wants_pipeline(context(pipeline="false").get) is False
    with pytest.raises(ConfigError, match="'pipeline': 'no' is not true or false"):
        wants_pipeline(context(pipeline="no").get)


def test_dev_stage_synthesizes_without_any_pipeline_key() -> None:
    pipeline_keys = ("githubConnectionArn", "pipelineAccount", "pipelineRegion", "stages")
    app = cdk.App(context=context(pipeline="false", **dict.fromkeys(pipeline_keys)))
    build_app(app)
    stacks = [child for child in app.node.find_all() if isinstance(child, cdk.Stack)]
    assert sorted(stack.stack_name for stack in stacks) == [
        "UploadLedger-dev-Monitoring",
        "UploadLedger-dev-Service",
    ]


def test_app_reports_a_missing_pipeline_key_when_the_pipeline_is_wanted() -> None:
    app = cdk.App(context=context(githubConnectionArn=None))
    with pytest.raises(ConfigError, match="'githubConnectionArn': is missing"):
        build_app(app)
