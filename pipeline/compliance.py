"""cdk-nag acknowledgements for what CDK Pipelines generates (roles, projects, buckets).

CDK Pipelines makes these roles and policies itself; we cannot narrow them without
re-implementing it. Each finding is acknowledged on its own, on the narrowest construct
that holds it, with the reason; a new wildcard still fails the build. Findings on the
project's own constructs are acknowledged in the code that makes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_codebuild as codebuild
from constructs import IConstruct

from compliance.nag import acknowledge, arn_partition, logical_id

if TYPE_CHECKING:  # the stack calls in here once its pipeline is built
    from pipeline.stack import PipelineStack

# The artifact bucket's grants (grantRead/grantReadWrite) on every pipeline role: action
# families on the pipeline's own artifact bucket and its KMS key, nothing else.
ARTIFACT_ACCESS_REASON = (
    "CDK Pipelines grants each pipeline role read (and for producers write) access to the "
    "pipeline's own artifact bucket and its KMS key; the wildcard is the action family "
    "(GetObject*, List*, GenerateDataKey*...) or the objects of that one bucket."
)
ARTIFACT_ACTION_FINDINGS = (
    "AwsSolutions-IAM5[Action::s3:GetObject*]",
    "AwsSolutions-IAM5[Action::s3:GetBucket*]",
    "AwsSolutions-IAM5[Action::s3:List*]",
    "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
    "AwsSolutions-IAM5[Action::s3:Abort*]",
    "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
    "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
)
PROJECT_LOGS_REASON = (
    "CodeBuild writes this project's logs to the log group /aws/codebuild/<project name> and "
    "its reports to report groups named <project name>-*; the wildcard is the stream and "
    "report suffix CodeBuild generates at run time, scoped to this one project."
)


def acknowledge_pipeline_findings(stack: PipelineStack) -> None:
    """Acknowledge the findings CDK Pipelines' generated resources cannot avoid."""
    pipeline = stack.pipeline
    _acknowledge_artifact_access(stack)
    _acknowledge_project_logs(stack)
    _acknowledge_asset_publishing(pipeline.node.find_child("Assets"))
    _acknowledge_self_mutation(pipeline.node.find_child("UpdatePipeline"))
    _acknowledge_cross_region_support(stack)
    acknowledge(
        pipeline.pipeline.artifact_bucket,
        "AwsSolutions-S1",
        "The artifact bucket holds only the pipeline's own build artifacts, written and read "
        "by the pipeline's roles; CloudTrail records its API use. An access-log bucket for it "
        "would need its own cross-account key policy for no extra audit value.",
    )


def _acknowledge_artifact_access(stack: PipelineStack) -> None:
    pipeline = stack.pipeline
    bucket_id = logical_id(pipeline.pipeline.artifact_bucket)
    for finding in (*ARTIFACT_ACTION_FINDINGS, f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]"):
        acknowledge(pipeline, finding, ARTIFACT_ACCESS_REASON)


def _acknowledge_project_logs(stack: PipelineStack) -> None:
    # One pair of findings per CodeBuild project (synth, self-mutation, each stage's diff
    # and smoke test), each naming that project.
    partition = arn_partition(stack)
    logs_arn = f"arn:{partition}:logs:{stack.region}:{stack.account}:log-group:/aws/codebuild"
    reports_arn = f"arn:{partition}:codebuild:{stack.region}:{stack.account}:report-group"
    for project in stack.pipeline.node.find_all():
        if not isinstance(project, codebuild.CfnProject):
            continue
        project_id = logical_id(project)
        acknowledge(
            stack.pipeline,
            f"AwsSolutions-IAM5[Resource::{logs_arn}/<{project_id}>:*]",
            PROJECT_LOGS_REASON,
        )
        acknowledge(
            stack.pipeline,
            f"AwsSolutions-IAM5[Resource::{reports_arn}/<{project_id}>-*]",
            PROJECT_LOGS_REASON,
        )


def _acknowledge_asset_publishing(assets: IConstruct) -> None:
    stack = Stack.of(assets)
    partition = arn_partition(stack)
    acknowledge(
        assets,
        f"AwsSolutions-IAM5[Resource::arn:{partition}:logs:{stack.region}:{stack.account}"
        ":log-group:/aws/codebuild/*]",
        "The asset-publishing role is shared by the asset projects CDK Pipelines creates on "
        "demand, so CDK scopes its log permission to the account's CodeBuild log groups.",
    )
    acknowledge(
        assets,
        f"AwsSolutions-IAM5[Resource::arn:{partition}:codebuild:{stack.region}:{stack.account}"
        ":report-group/*]",
        "The asset-publishing role is shared by the asset projects CDK Pipelines creates on "
        "demand, so CDK scopes its report permission to the account's report groups.",
    )
    acknowledge(
        assets,
        "AwsSolutions-IAM5[Resource::*]",
        "codebuild:StartBuild/BatchGetBuilds/StopBuild for the asset projects CDK Pipelines "
        "generates; publishing itself runs as the bootstrap file-publishing role only.",
    )


def _acknowledge_self_mutation(update_pipeline: IConstruct) -> None:
    stack = Stack.of(update_pipeline)
    acknowledge(
        update_pipeline,
        f"AwsSolutions-IAM5[Resource::arn:*:iam::{stack.account}:role/*]",
        "Self-mutation assumes the CDK bootstrap roles; the statement is limited by the "
        "condition iam:ResourceTag/aws-cdk:bootstrap-role to the deploy and publishing roles.",
    )
    acknowledge(
        update_pipeline,
        "AwsSolutions-IAM5[Resource::*]",
        "cloudformation:DescribeStacks and s3:ListBucket for `cdk deploy` of the pipeline "
        "stack itself; DescribeStacks has no narrower resource before the stack exists.",
    )


def _acknowledge_cross_region_support(stack: PipelineStack) -> None:
    # A stage in another region than the pipeline gets a support stack there with a
    # replication bucket and key (CDK-generated, one per region).
    code_pipeline = stack.pipeline.pipeline
    for support in code_pipeline.cross_region_support.values():
        bucket = support.replication_bucket
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "The cross-region replication bucket holds only copies of the pipeline's own "
            "artifacts for a stage in that region; CloudTrail records its API use.",
        )
        bucket_name = str(stack.resolve(bucket.bucket_name))
        acknowledge(
            code_pipeline.role,
            f"AwsSolutions-IAM5[Resource::arn:{arn_partition(stack)}:s3:::{bucket_name}/*]",
            "The pipeline copies artifacts into the objects of the replication bucket of "
            "the stage's region; the wildcard is the objects of that one bucket.",
        )
        acknowledge(
            code_pipeline.role,
            "AwsSolutions-IAM5[Resource::*]",
            "The replication bucket's KMS key lives in another region and is referenced by "
            "alias, so CDK cannot name its ARN here; the statement holds only the "
            "encrypt/decrypt actions the artifact copy needs.",
        )
