"""Configuration errors: each missing or malformed key names itself and how to fix it."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from app import build_app
from config import settings
from config.regions import EXAMPLE_REGIONS
from config.settings import (
    CONNECTION_ARN_EXAMPLE,
    ConfigError,
    Context,
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
        load_pipeline_config(context(**overrides))
    return str(error.value)


def app_error(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as error:
        load_app_config(context(**overrides))
    return str(error.value)


def test_committed_cdk_json_is_valid_for_both_the_app_and_the_pipeline() -> None:
    config = load_pipeline_config(context())
    assert [stage.name for stage in config.stages] == ["staging", "production"]
    assert load_app_config(context()).dev_stage.name == "dev"


@pytest.mark.parametrize(
    "key", ["githubConnectionArn", "githubRepository", "pipelineAccount", "pipelineRegion"]
)
def test_missing_pipeline_key_names_it_and_how_to_set_it(key: str) -> None:
    message = pipeline_error(**{key: None})
    assert message.startswith(f"context '{key}': is missing.")
    assert f'Set "{key}" under "context" in cdk.json, or pass -c {key}=VALUE' in message


def test_missing_pipeline_key_suggests_the_dev_only_switch() -> None:
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(context(githubConnectionArn=None))
    assert any("-c pipeline=false" in note for note in error.value.__notes__)


def test_malformed_connection_arn_shows_the_expected_form() -> None:
    message = pipeline_error(githubConnectionArn="arn:aws:s3:::my-bucket")
    assert "'githubConnectionArn': 'arn:aws:s3:::my-bucket' is not a CodeConnections" in message
    assert f"(for example {CONNECTION_ARN_EXAMPLE})" in message


def test_old_codestar_connections_arn_is_accepted() -> None:
    arn = GOOD_ARN.replace("codeconnections", "codestar-connections")
    assert load_pipeline_config(context(githubConnectionArn=arn)).connection_arn == arn


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("pipelineAccount", "12345", "'pipelineAccount': '12345' is not a 12-digit AWS account id"),
        ("pipelineRegion", "Frankfurt", "'pipelineRegion': 'Frankfurt' is not an AWS region name"),
        (
            "githubRepository",
            "no-slash",
            "'githubRepository': 'no-slash' is not a GitHub owner/repository",
        ),
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
    config = load_pipeline_config(context(stages=json.dumps(stages)))
    assert [stage.region for stage in config.stages] == ["eu-west-1"]


def test_broken_json_passed_with_dash_c_says_so() -> None:
    message = pipeline_error(stages='[{"name": "qa",')
    assert re.search(r"'stages': is not valid JSON \(.+\)", message)


def test_pipeline_is_wanted_unless_switched_off() -> None:
    assert wants_pipeline(context()) is True
    assert wants_pipeline(context(pipeline="false")) is False
    with pytest.raises(ConfigError, match="'pipeline': 'no' is not true or false"):
        wants_pipeline(context(pipeline="no"))


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


# Issue 12: configuration is checked, not guessed.

PRODUCTION = {"name": "production", "account": "111111111111", "region": "eu-central-1"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"stages": [{**PRODUCTION, "manualAproval": True}]},
            "context 'stages[0].manualAproval': is not a setting here; "
            'did you mean "manualApproval"?',
        ),
        (
            {
                "devStage": {
                    "name": "dev",
                    "account": "111111111111",
                    "region": "eu-central-1",
                    "retaindata": False,
                }
            },
            "context 'devStage.retaindata': is not a setting here; did you mean \"retainData\"?",
        ),
        (
            {"alarmEmail": ["oncall@example.com"]},
            "context 'alarmEmail': is not a setting here; did you mean \"alarmEmails\"?",
        ),
        (
            {
                "devStage": {
                    "name": "dev",
                    "account": "111111111111",
                    "region": "eu-central-1",
                    "manualApproval": True,
                }
            },
            "context 'devStage.manualApproval': is not a setting here",
        ),
        ({"colour": "blue"}, "context 'colour': is not a setting here (known: githubRepository"),
    ],
    ids=["stage-typo", "dev-stage-case", "top-level-typo", "dev-stage-approval", "unrelated"],
)
def test_unknown_keys_are_rejected_with_the_nearest_known_one(
    overrides: dict[str, Any], expected: str
) -> None:
    reader = load_pipeline_config if "stages" in overrides else load_app_config
    with pytest.raises(ConfigError) as error:
        reader(context(**overrides))
    assert expected in str(error.value)


def test_the_typo_that_dropped_productions_approval_fails_the_app() -> None:
    stages = [{**PRODUCTION, "manualAproval": True}]
    with pytest.raises(ConfigError, match='did you mean "manualApproval"'):
        build_app(cdk.App(context=context(stages=stages)))


def test_cdk_feature_flags_and_cli_settings_are_not_the_projects_to_check() -> None:
    flags = {
        "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
        "aws:cdk:enable-path-metadata": True,
        "availability-zones:account=111111111111:region=eu-central-1": ["eu-central-1a"],
        "cli-telemetry": False,
        "acknowledged-issue-numbers": [32775],
    }
    assert load_app_config(context(**flags)).dev_stage.name == "dev"


def test_a_dev_stage_named_like_a_pipeline_stage_is_rejected_even_without_the_pipeline() -> None:
    message = app_error(devStage=PRODUCTION, pipeline="false")
    assert "'devStage.name': 'production' is also the name of stages[1]" in message
    assert "UploadLedger-production-*" in message


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-central-1", "aws"),
        ("us-east-1", "aws"),
        ("mx-central-1", "aws"),
        ("il-central-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("eusc-de-east-1", "aws-eusc"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("us-isof-south-1", "aws-iso-f"),
    ],
)
def test_every_partitions_regions_are_accepted(region: str, partition: str) -> None:
    stage = {"name": "dev", "account": "111111111111", "region": region}
    assert load_app_config(context(devStage=stage)).dev_stage.partition == partition


@pytest.mark.parametrize(
    "region", ["xx-moon-1", "mars-1", "eu-central", "EU-CENTRAL-1", "eusc-xx-east-1"]
)
def test_made_up_regions_are_rejected(region: str) -> None:
    stage = {"name": "dev", "account": "111111111111", "region": region}
    message = app_error(devStage=stage)
    assert f"'devStage.region': {region!r} is not an AWS region name" in message
    assert "for example" not in message  # the examples are given once, one per partition


def test_every_region_in_aws_endpoint_metadata_is_accepted_in_its_partition() -> None:
    # botocore ships AWS's own partitions.json; our shapes must know every region in it.
    from botocore.loaders import Loader

    from config.regions import partition_of

    partitions = Loader().load_data("partitions")["partitions"]
    known = {
        region: partition["id"]
        for partition in partitions
        for region in partition["regions"]
        if not region.endswith("-global")
    }
    assert len(known) > 30
    assert {region: partition_of(region) for region in known} == known


def test_a_stage_outside_the_pipelines_partition_is_rejected() -> None:
    stage = {"name": "china", "account": "111111111111", "region": "cn-north-1"}
    message = pipeline_error(stages=[stage])
    assert "'stages[0].region': 'cn-north-1' is in the aws-cn partition" in message


def test_an_account_written_as_a_number_says_write_it_as_a_string() -> None:
    stage = {"name": "dev", "account": 111111111111, "region": "eu-central-1"}
    assert '111111111111 is a number; write it as a string, "111111111111"' in app_error(
        devStage=stage
    )


def test_messages_say_the_value_came_from_cdk_json_or_dash_c() -> None:
    stage = {"name": "dev", "account": "1234", "region": "eu-central-1"}
    committed = Context(context(devStage=stage), files={"cdk.json": {"devStage": stage}})
    with pytest.raises(ConfigError, match=r"^cdk\.json context 'devStage\.account'"):
        load_app_config(committed)
    assert app_error(devStage=stage).startswith("From -c, context 'devStage.account'")


def test_an_empty_dash_c_dev_stage_is_missing_not_bad_json() -> None:
    assert "From -c, context 'devStage': is missing" in app_error(devStage="")


@pytest.mark.parametrize(
    ("value", "expected"), [("False", False), ("TRUE", True), ("false", False)]
)
def test_pipeline_switch_accepts_any_case(value: str, expected: bool) -> None:
    assert wants_pipeline(context(pipeline=value)) is expected


def test_every_example_in_a_message_is_a_valid_value() -> None:
    examples = {
        "githubRepository": settings.REPOSITORY_EXAMPLE,
        "githubBranch": settings.BRANCH_EXAMPLE,
        "githubConnectionArn": settings.CONNECTION_ARN_EXAMPLE,
        "pipelineAccount": settings.ACCOUNT_EXAMPLE,
        "pipelineRegion": settings.REGION_EXAMPLE,
        "stages": [json.loads(settings.STAGE_EXAMPLE)],
        "devStage": json.loads(settings.DEV_STAGE_EXAMPLE),
        "alarmEmails": json.loads(settings.EMAILS_EXAMPLE),
    }
    example_context = {**examples, "stages": [{**examples["stages"][0]}]}
    assert load_pipeline_config(example_context).stages[0].name == settings.STAGE_NAME_EXAMPLE
    assert load_app_config(example_context).alarm_emails == ("oncall@example.com",)
    for region in EXAMPLE_REGIONS.values():
        stage = {**json.loads(settings.DEV_STAGE_EXAMPLE), "region": region}
        assert load_app_config({**example_context, "devStage": stage})


def test_an_unknown_key_is_to_be_renamed_or_removed_not_set() -> None:
    message = app_error(alarmEmail=["oncall@example.com"])
    assert message.endswith(
        'did you mean "alarmEmails"? Rename or remove it under "context" in cdk.json '
        "(or in your -c option)."
    )
    assert 'Set "alarmEmail"' not in message
    stages = [{**PRODUCTION, "manualAproval": True}]
    assert 'Rename or remove it in "stages[0]" in cdk.json' in pipeline_error(stages=stages)
