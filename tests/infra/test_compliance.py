"""cdk-nag over every stack (stage stacks included) and cfn-lint over every template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cfnlint.api import ManualArgs, lint_file

import contract
from app import build_app
from compliance import policies
from compliance.nag import MIN_REASON_LENGTH, acknowledge
from compliance.report import Finding, read_findings
from config.settings import cdk_json_context, load_app_config, load_pipeline_config
from stage import LedgerStage

# cfn-lint findings we accept, each by rule AND exact message, with its reason; the rule
# itself stays on, so any other finding of it still fails.
ACCEPTED_CFN_LINT_FINDINGS: dict[tuple[str, str], str] = {
    ("E3703", "Prefer using Fn::Sub over Fn::Join with an empty delimiter"): (
        "CDK Pipelines renders each CloudFormation deploy action's RoleArn (the stage's "
        "cdk-<qualifier>-cfn-exec-role) as Fn::Join with an empty delimiter. CloudFormation "
        "and CodePipeline accept it; cfn-lint's action-configuration check merely prefers "
        "Fn::Sub, a style point about generated code we do not write."
    ),
}


def synthesize(app: cdk.App) -> tuple[Path, list[Finding]]:
    """Synthesizes with cdk-nag on; returns the assembly and every unacknowledged finding."""
    outdir = Path(app.outdir)
    try:
        app.synth()
    except RuntimeError as error:
        # Validation failed: the findings are in the report, which we read either way.
        if not str(error).startswith("ValidationFailed"):
            raise
    return outdir, read_findings(outdir)


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Finding]]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    return synthesize(build_app(cdk.App(context=cdk_json_context(), outdir=str(outdir))))


def test_every_stack_has_zero_unacknowledged_findings(
    assembly: tuple[Path, list[Finding]],
) -> None:
    _, findings = assembly
    assert findings == [], "cdk-nag findings to fix or acknowledge:\n" + "\n".join(
        map(str, findings)
    )


class StageWithPlainQueue(LedgerStage):
    """A LedgerStage with a queue that breaks AwsSolutions-SQS4 (no enforce_ssl)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sqs.Queue(self.service, "PlainQueue")


def test_checks_reach_the_pipeline_the_dev_stage_and_the_pipeline_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Built in the stage itself: CDK Pipelines synthesizes each stage when it builds.
    monkeypatch.setattr("app.LedgerStage", StageWithPlainQueue)
    monkeypatch.setattr("pipeline.stack.LedgerStage", StageWithPlainQueue)
    app = build_app(cdk.App(context=cdk_json_context(), outdir=str(tmp_path)))
    sqs.Queue(cast(cdk.Stack, app.node.find_child(contract.PIPELINE_STACK_NAME)), "PlainQueue")
    _, findings = synthesize(app)
    flagged = {f.path for f in findings if f.rule == "AwsSolutions-SQS4"}
    pipeline = contract.PIPELINE_STACK_NAME
    assert flagged == {
        f"{pipeline}/PlainQueue/Resource",
        f"{contract.STACK_PREFIX}-dev/Service/PlainQueue/Resource",
        f"{pipeline}/{contract.STACK_PREFIX}-staging/Service/PlainQueue/Resource",
        f"{pipeline}/{contract.STACK_PREFIX}-production/Service/PlainQueue/Resource",
    }
    finding = next(f for f in findings if f.rule == "AwsSolutions-SQS4")
    assert "SSL" in str(finding)


def test_acknowledgement_needs_a_reason_a_reviewer_can_judge() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    with pytest.raises(ValueError, match="needs a reason"):
        acknowledge(stack, "AwsSolutions-SQS3", "not needed")


def templates(outdir: Path) -> list[Path]:
    # The top-level stacks and those of every stage (nested assembly-* directories).
    return sorted(outdir.glob("**/*.template.json"))


def regions_in_use() -> list[str]:
    lookup = cdk_json_context().get
    pipeline = load_pipeline_config(lookup)
    regions = {pipeline.region, load_app_config(lookup).dev_stage.region}
    return sorted(regions | {stage.region for stage in pipeline.stages})


def test_cfn_lint_finds_no_errors_in_any_template(assembly: tuple[Path, list[Finding]]) -> None:
    outdir, _ = assembly
    found = templates(outdir)
    # The pipeline, the dev stage's stack and each pipeline stage's stacks at least.
    assert len(found) >= 4, found
    config = ManualArgs(regions=regions_in_use())
    errors = [
        f"{template.relative_to(outdir)}: {match}"
        for template in found
        for match in lint_file(template, config)
        if match.rule.id.startswith("E")
        and (match.rule.id, match.message) not in ACCEPTED_CFN_LINT_FINDINGS
    ]
    assert errors == []


# Issue 12: a pipeline and its stages in each partition besides `aws` synthesize with no
# unacknowledged finding, and no template names the `aws` partition.
PARTITION_LAYOUTS = {
    "aws-cn": ("cn-north-1", "cn-northwest-1"),
    "aws-us-gov": ("us-gov-west-1", "us-gov-east-1"),
    "aws-eusc": ("eusc-de-east-1", "eusc-de-east-1"),
}


def partition_context(partition: str) -> dict[str, object]:
    home, other = PARTITION_LAYOUTS[partition]

    def stage(name: str, region: str) -> dict[str, str]:
        return {"name": name, "account": "111111111111", "region": region}

    return {
        **cdk_json_context(),
        "githubConnectionArn": f"arn:{partition}:codeconnections:{home}:111111111111:"
        "connection/00000000-0000-0000-0000-000000000000",
        "pipelineRegion": home,
        "stages": [stage("staging", home), {**stage("production", other), "manualApproval": True}],
        "devStage": stage("dev", other),
    }


@pytest.mark.parametrize("partition", sorted(PARTITION_LAYOUTS))
def test_stages_in_other_partitions_synthesize_clean(partition: str, tmp_path: Path) -> None:
    app = cdk.App(context=partition_context(partition), outdir=str(tmp_path))
    outdir, findings = synthesize(build_app(app))
    assert findings == [], "\n".join(map(str, findings))
    found = templates(outdir)
    assert len(found) >= 5
    in_aws_partition = [t.name for t in found if "arn:aws:" in t.read_text(encoding="utf-8")]
    assert in_aws_partition == []
    pipeline = (outdir / f"{contract.PIPELINE_STACK_NAME}.template.json").read_text(
        encoding="utf-8"
    )
    assert f"arn:{partition}:" in pipeline


# Issue 12: every IAM policy of every template passes parliament, or is acknowledged.


def test_every_iam_policy_passes_parliament(assembly: tuple[Path, list[Finding]]) -> None:
    outdir, _ = assembly
    findings = policies.check_assembly(outdir)
    assert findings == [], "\n".join(map(str, findings))


def test_parliament_finds_made_up_actions_and_resources_of_the_wrong_type(
    tmp_path: Path,
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(
        app, "Broken", env=cdk.Environment(account="111111111111", region="cn-north-1")
    )
    table = dynamodb.Table(
        stack,
        "Table",
        partition_key=dynamodb.Attribute(name="k", type=dynamodb.AttributeType.STRING),
    )
    bucket = s3.Bucket(stack, "Bucket")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:PutObjekt"], resources=[bucket.arn_for_objects("*")])
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[bucket.bucket_arn])
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[table.table_arn])
    )
    app.synth()
    found = {(f.issue, f.detail) for f in policies.check_assembly(tmp_path)}
    assert ("UNKNOWN_ACTION", json.dumps("Unknown action s3:PutObjekt")) in found
    mismatched = [d for issue, d in found if issue == "RESOURCE_MISMATCH"]
    assert any("dynamodb:PutItem" in d for d in mismatched)
    assert not any("dynamodb:GetItem" in d for d in found)


def test_every_parliament_acknowledgement_has_a_reason_a_reviewer_can_judge() -> None:
    assert all(len(a.reason) >= MIN_REASON_LENGTH for a in policies.ACKNOWLEDGED)
