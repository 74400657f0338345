"""The PipelineStack's CloudFormation: source, tested synth, self-mutation, ordered stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import contract
from app import build_app
from config.settings import cdk_json_context, load_pipeline_config
from pipeline.stack import BUILD_RUNTIME_VERSIONS, CDK_CLI_VERSION, PipelineStack
from stage import LedgerStage

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# Two other accounts, and staging in another region than the pipeline (cross-region support).
STAGES: list[dict[str, Any]] = [
    {"name": "staging", "account": "222222222222", "region": "eu-west-1"},
    {
        "name": "production",
        "account": "333333333333",
        "region": "eu-central-1",
        "manualApproval": True,
    },
]
CONTEXT = {
    **cdk_json_context(),
    "githubRepository": "example-org/ledger-fork",
    "githubBranch": "release",
    "stages": STAGES,
}


@pytest.fixture(scope="module")
def pipeline_stack() -> PipelineStack:
    app = build_app(cdk.App(context=CONTEXT))
    stack = app.node.find_child(contract.PIPELINE_STACK_NAME)
    assert isinstance(stack, PipelineStack)
    return stack


@pytest.fixture(scope="module")
def template(pipeline_stack: PipelineStack) -> Template:
    return Template.from_stack(pipeline_stack)


@pytest.fixture(scope="module")
def pipeline_stages(template: Template) -> dict[str, list[dict[str, Any]]]:
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    assert pipeline["Properties"]["PipelineType"] == "V2"
    return {stage["Name"]: stage["Actions"] for stage in pipeline["Properties"]["Stages"]}


def action(actions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [a for a in actions if a["Name"] == name]
    return found


def build_spec(template: Template, codebuild_action: dict[str, Any]) -> dict[str, Any]:
    project_id = codebuild_action["Configuration"]["ProjectName"]["Ref"]
    project = template.to_json()["Resources"][project_id]
    spec: dict[str, Any] = json.loads(project["Properties"]["Source"]["BuildSpec"])
    return spec


def test_source_is_the_configured_repository_and_branch_through_the_connection(
    pipeline_stages: dict[str, list[dict[str, Any]]],
) -> None:
    (source,) = pipeline_stages["Source"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "example-org/ledger-fork"
    assert source["Configuration"]["BranchName"] == "release"
    assert source["Configuration"]["ConnectionArn"] == CONTEXT["githubConnectionArn"]


def test_synth_installs_pinned_files_runs_lint_and_tests_before_synthesizing(
    template: Template, pipeline_stages: dict[str, list[dict[str, Any]]]
) -> None:
    spec = build_spec(template, action(pipeline_stages["Build"], "Synth"))
    assert spec["phases"]["install"]["commands"] == ["make install"]
    assert spec["phases"]["install"]["runtime-versions"] == BUILD_RUNTIME_VERSIONS
    # Node 20 is end of life: jsii warns on it. The pipeline builds with a supported one.
    assert spec["phases"]["install"]["runtime-versions"]["nodejs"] == "22"
    # `make test` is lint (ruff, mypy) and pytest; it fails the build before `make synth`.
    assert spec["phases"]["build"]["commands"] == ["make test", "make synth"]
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    makefile = (REPOSITORY_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "test: install lint" in makefile
    assert "pip install -r requirements-dev.txt -c constraints.txt" in makefile


def test_pipeline_updates_itself_after_synth_and_before_any_stage(
    pipeline_stages: dict[str, list[dict[str, Any]]],
) -> None:
    names = list(pipeline_stages)
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    assert [a["Name"] for a in pipeline_stages["UpdatePipeline"]] == ["SelfMutate"]


def test_self_mutation_uses_the_pinned_cdk_cli(
    template: Template, pipeline_stages: dict[str, list[dict[str, Any]]]
) -> None:
    package = json.loads((REPOSITORY_ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["aws-cdk"] == CDK_CLI_VERSION
    spec = build_spec(template, action(pipeline_stages["UpdatePipeline"], "SelfMutate"))
    assert f"npm install -g aws-cdk@{CDK_CLI_VERSION}" in spec["phases"]["install"]["commands"]


def test_artifacts_are_encrypted_with_a_rotating_key_for_cross_account_stages(
    template: Template,
) -> None:
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def ledger_stages(stack: PipelineStack) -> list[LedgerStage]:
    return stack.stages


def stacks_of(stage: LedgerStage) -> list[cdk.Stack]:
    """Every stack of the stage, so a stack added to LedgerStage is checked automatically."""
    return [child for child in stage.node.children if isinstance(child, cdk.Stack)]


def test_one_deploy_stage_per_configured_stage_in_order_with_every_stack(
    pipeline_stack: PipelineStack, pipeline_stages: dict[str, list[dict[str, Any]]]
) -> None:
    expected = [f"{contract.STACK_PREFIX}-{stage['name']}" for stage in STAGES]
    assert [name for name in pipeline_stages if name.startswith(contract.STACK_PREFIX)] == expected
    for stage in pipeline_stack.stages:
        stacks = stacks_of(stage)
        assert stage.service in stacks
        actions = pipeline_stages[stage.node.id]
        for stack in stacks:
            deploy = action(actions, f"{stack.node.id}.Deploy")
            assert deploy["Configuration"]["StackName"] == stack.stack_name
            assert stack.account == stage.account


def test_stages_deploy_to_their_configured_accounts_and_regions(
    pipeline_stack: PipelineStack,
) -> None:
    configured = [(s["account"], s["region"]) for s in STAGES]
    assert [(stage.account, stage.region) for stage in pipeline_stack.stages] == configured


def run_order(actions: list[dict[str, Any]], name: str) -> int:
    order: int = action(actions, name)["RunOrder"]
    return order


def test_manual_approval_comes_after_the_stage_checks_and_before_deploying(
    pipeline_stages: dict[str, list[dict[str, Any]]],
) -> None:
    production = pipeline_stages[f"{contract.STACK_PREFIX}-production"]
    assert action(production, "Approve")["ActionTypeId"]["Provider"] == "Manual"
    assert run_order(production, "Diff") < run_order(production, "Approve")
    assert run_order(production, "Approve") < run_order(production, "Service.Prepare")


def test_stage_without_approval_has_checks_but_no_approval(
    pipeline_stages: dict[str, list[dict[str, Any]]],
) -> None:
    staging = pipeline_stages[f"{contract.STACK_PREFIX}-staging"]
    assert [a for a in staging if a["ActionTypeId"]["Provider"] == "Manual"] == []
    assert run_order(staging, "Diff") < run_order(staging, "Service.Prepare")


def test_stage_check_diffs_the_stage_with_the_target_accounts_lookup_role(
    template: Template, pipeline_stages: dict[str, list[dict[str, Any]]]
) -> None:
    staging = pipeline_stages[f"{contract.STACK_PREFIX}-staging"]
    spec = build_spec(template, action(staging, "Diff"))
    (command,) = spec["phases"]["build"]["commands"]
    assert "diff --app . --no-change-set" in command
    assert f"'{contract.PIPELINE_STACK_NAME}/{contract.STACK_PREFIX}-staging/*'" in command
    lookup_role = "cdk-hnb659fds-lookup-role-222222222222-eu-west-1"
    assert lookup_role in json.dumps(template.find_resources("AWS::IAM::Policy"))


def test_smoke_test_runs_after_every_deploy_with_names_from_the_stack_outputs(
    template: Template,
    pipeline_stack: PipelineStack,
    pipeline_stages: dict[str, list[dict[str, Any]]],
) -> None:
    for stage in pipeline_stack.stages:
        actions = pipeline_stages[stage.node.id]
        deploys = [a["RunOrder"] for a in actions if a["Name"].endswith(".Deploy")]
        assert run_order(actions, "SmokeTest") > max(deploys)
        smoke = action(actions, "SmokeTest")
        variables = {
            v["name"]: v["value"]
            for v in json.loads(smoke["Configuration"]["EnvironmentVariables"])
        }
        namespace = action(actions, "Service.Deploy")["Namespace"]
        assert variables["BUCKET_NAME"] == f"#{{{namespace}.{contract.OUTPUT_BUCKET_NAME}}}"
        assert variables["TABLE_NAME"] == f"#{{{namespace}.{contract.OUTPUT_TABLE_NAME}}}"
        assert (
            variables["SMOKE_TEST_ROLE_ARN"]
            == f"#{{{namespace}.{contract.OUTPUT_SMOKE_TEST_ROLE_ARN}}}"
        )
        spec = build_spec(template, smoke)
        assert spec["phases"]["build"]["commands"] == [
            f"python -m scripts.smoke --region {stage.region} "
            f"--timeout {contract.SMOKE_TEST_TIMEOUT_SECONDS}"
        ]


def test_smoke_test_may_only_assume_its_stages_smoke_test_role(template: Template) -> None:
    assume = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "sts:AssumeRole" and "smoke-test" in json.dumps(statement)
    ]
    resources = sorted(json.dumps(s["Resource"]) for s in assume)
    assert len(resources) == len(STAGES)
    for stage in STAGES:
        role = contract.smoke_test_role_name(str(stage["name"]), str(stage["region"]))
        assert any(f":iam::{stage['account']}:role/{role}" in r for r in resources)


def test_stage_smoke_test_role_trusts_the_pipeline_account_and_only_smoke_test_data(
    pipeline_stack: PipelineStack,
) -> None:
    service = Template.from_stack(pipeline_stack.stages[0].service)
    role_name = contract.smoke_test_role_name("staging", "eu-west-1")
    roles = service.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": role_name}})
    (role,) = roles.values()
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert f":iam::{pipeline_stack.account}:root" in json.dumps(trust["Principal"])
    # ...but only its smoke-test CodeBuild role, not every principal of that account.
    runner = contract.smoke_test_runner_role_name("staging", "eu-west-1")
    principal_arn = json.dumps(trust["Condition"]["ArnEquals"]["aws:PrincipalArn"])
    assert f":iam::{pipeline_stack.account}:role/{runner}" in principal_arn
    policies = service.find_resources("AWS::IAM::Policy")
    (statements,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in policies.values()
        if "SmokeTestRole" in json.dumps(p["Properties"]["Roles"])
    ]
    actions = {a for s in statements for a in s["Action"]}
    assert actions == {
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
    }
    rendered = json.dumps(statements)
    assert f"/{contract.SMOKE_TEST_PREFIX}*" in rendered
    assert '"dynamodb:LeadingKeys": ["smoke-tests/*"]' in rendered


def test_each_smoke_test_runs_as_the_named_role_its_stage_trusts(
    template: Template, pipeline_stages: dict[str, list[dict[str, Any]]]
) -> None:
    resources = template.to_json()["Resources"]
    for stage in STAGES:
        smoke = action(pipeline_stages[f"{contract.STACK_PREFIX}-{stage['name']}"], "SmokeTest")
        project = resources[smoke["Configuration"]["ProjectName"]["Ref"]]
        role = resources[project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]]
        runner = contract.smoke_test_runner_role_name(str(stage["name"]), str(stage["region"]))
        assert role["Properties"]["RoleName"] == runner
        assert len(runner) <= 64


def test_artifact_keys_are_kept_as_long_as_their_buckets(pipeline_stack: PipelineStack) -> None:
    # The pipeline's artifact bucket and each cross-region replication bucket are retained
    # when the stack is deleted; so must be the keys that decrypt them.
    code_pipeline = pipeline_stack.pipeline.pipeline
    supports = [s.stack for s in code_pipeline.cross_region_support.values()]
    assert supports, "STAGES has a stage in another region: a support stack is expected"
    for stack in [pipeline_stack, *supports]:
        resources = Template.from_stack(stack).to_json()["Resources"].values()
        kept = {
            kind: {r.get("DeletionPolicy", "Delete") for r in resources if r["Type"] == kind}
            for kind in ("AWS::S3::Bucket", "AWS::KMS::Key")
        }
        assert kept == {"AWS::S3::Bucket": {"Retain"}, "AWS::KMS::Key": {"Retain"}}, stack


def test_developers_own_stage_has_no_smoke_test_role() -> None:
    app = build_app(cdk.App(context=CONTEXT))
    dev = app.node.find_child(f"{contract.STACK_PREFIX}-dev")
    assert isinstance(dev, LedgerStage)
    assert dev.service.smoke_test_role is None
    assert (
        contract.OUTPUT_SMOKE_TEST_ROLE_ARN
        not in Template.from_stack(dev.service).to_json()["Outputs"]
    )


def test_pipeline_config_is_read_from_context() -> None:
    config = load_pipeline_config(CONTEXT.get)
    assert (config.repository, config.branch) == ("example-org/ledger-fork", "release")
