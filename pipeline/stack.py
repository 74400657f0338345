"""PipelineStack: GitHub -> synth (lint, tests, cdk-nag, cdk synth) -> self-mutate -> stages.

Read top to bottom, `__init__` is the table of contents; each `_build_*` makes one thing.
Every stage from cdk.json is deployed in order: its checks (a read-only `cdk diff` against
the target account), then a manual approval if it asks for one, then its stacks, then the
smoke test against what was just deployed.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, RemovalPolicy, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.aws_codepipeline import PipelineType
from constructs import Construct

import contract
from config.settings import AppConfig, PipelineConfig, StageConfig
from pipeline.compliance import acknowledge_pipeline_findings
from stage import LedgerStage

# The CDK CLI the self-mutation step uses: the same version package.json pins (a test
# keeps the two equal), so the pipeline never updates itself with a different CLI.
CDK_CLI_VERSION = "2.1148.1"
# `cdk bootstrap`'s default qualifier: names the roles the stage checks assume.
BOOTSTRAP_QUALIFIER = "hnb659fds"
# CodeBuild's runtimes: Python as the constraints were generated with; Node 22 for the CLI
# and jsii (Node 20 is end of life; standard:7.0 offers 22). Local Node 20 still works.
BUILD_RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "22"}

# The synth step: install from the pinned files, lint and test (a failure stops the
# pipeline before it mutates itself), then synthesize, cdk-nag included.
SYNTH_INSTALL_COMMANDS = ["make install"]
SYNTH_COMMANDS = ["make test", "make synth"]


class PipelineStack(Stack):
    """The pipeline and the stages it deploys."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_config: PipelineConfig,
        app_config: AppConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=pipeline_config.account, region=pipeline_config.region),
            **kwargs,
        )
        self.config = pipeline_config
        self.app_config = app_config
        self.source = self._build_source()
        self.synth = self._build_synth()
        self.pipeline = self._build_pipeline()
        self.stages = [self._add_stage(stage) for stage in pipeline_config.stages]
        # Built now rather than at synth, so the generated roles and projects exist as
        # constructs that pipeline/compliance.py can acknowledge findings on.
        self.pipeline.build_pipeline()
        self._retain_artifact_keys()
        acknowledge_pipeline_findings(self)

    def _build_source(self) -> pipelines.CodePipelineSource:
        return pipelines.CodePipelineSource.connection(
            self.config.repository,
            self.config.branch,
            connection_arn=self.config.connection_arn,
        )

    def _build_synth(self) -> pipelines.CodeBuildStep:
        return pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            install_commands=SYNTH_INSTALL_COMMANDS,
            commands=SYNTH_COMMANDS,
            primary_output_directory="cdk.out",
        )

    def _retain_artifact_keys(self) -> None:
        # CDK keeps the artifact buckets (here and in each cross-region support stack) when
        # the stack is deleted, but deletes their KMS keys: the retained artifacts would be
        # unreadable. Keys follow their buckets.
        code_pipeline = self.pipeline.pipeline
        stacks = [self, *(support.stack for support in code_pipeline.cross_region_support.values())]
        for stack in stacks:
            for construct in stack.node.find_all():
                if isinstance(construct, kms.CfnKey):
                    construct.apply_removal_policy(RemovalPolicy.RETAIN)

    def _build_pipeline(self) -> pipelines.CodePipeline:
        return pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=contract.PIPELINE_STACK_NAME,
            pipeline_type=PipelineType.V2,
            synth=self.synth,
            self_mutation=True,
            # Stages may live in other accounts: their artifacts need a KMS key they can use.
            cross_account_keys=True,
            enable_key_rotation=True,
            cli_version=CDK_CLI_VERSION,
            # One asset project instead of one per asset: fewer roles, same result.
            publish_assets_in_parallel=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                    compute_type=codebuild.ComputeType.SMALL,
                ),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": BUILD_RUNTIME_VERSIONS}}}
                ),
            ),
        )

    def _add_stage(self, stage: StageConfig) -> LedgerStage:
        ledger_stage = LedgerStage(
            self,
            contract.stage_stack_prefix(stage.name),
            stage=stage,
            app_config=self.app_config,
            smoke_test_account=self.config.account,
        )
        self.pipeline.add_stage(
            ledger_stage,
            pre=self._stage_checks(stage, ledger_stage),
            post=[self._smoke_test(stage, ledger_stage)],
        )
        return ledger_stage

    def _stage_checks(self, stage: StageConfig, ledger_stage: LedgerStage) -> list[pipelines.Step]:
        diff = self._diff_step(stage, ledger_stage)
        if not stage.manual_approval:
            return [diff]
        approval = pipelines.ManualApprovalStep(
            "Approve",
            comment=f"Deploy to {stage.name} ({stage.account}/{stage.region})? "
            "The Diff action's log shows what will change.",
        )
        # After the checks, never beside them: the approver reads the diff first.
        approval.add_step_dependency(diff)
        return [diff, approval]

    def _diff_step(self, stage: StageConfig, ledger_stage: LedgerStage) -> pipelines.CodeBuildStep:
        # The synth step already ran the tests, cdk-nag and cfn-lint over every template;
        # what a reviewer still needs is what this deploy changes in this account. The
        # CLI reads the deployed templates with the stage account's read-only lookup role.
        selector = f"{self.node.id}/{ledger_stage.node.id}/*"
        return pipelines.CodeBuildStep(
            "Diff",
            input=self.synth.primary_output,
            commands=[
                f"npx --yes aws-cdk@{CDK_CLI_VERSION} diff --app . --no-change-set '{selector}'"
            ],
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"],
                    resources=[
                        self._bootstrap_role_arn(stage, "lookup"),
                    ],
                )
            ],
        )

    def _smoke_test(self, stage: StageConfig, ledger_stage: LedgerStage) -> pipelines.CodeBuildStep:
        outputs = ledger_stage.service.outputs
        role_arn = self.format_arn(
            service="iam",
            region="",
            account=stage.account,
            resource="role",
            resource_name=contract.smoke_test_role_name(stage.name, stage.region),
        )
        return pipelines.CodeBuildStep(
            "SmokeTest",
            input=self.source,
            # Named, because the stage's smoke-test role trusts exactly this role.
            role=iam.Role(
                self.pipeline,
                f"SmokeTestRunnerRole-{stage.name}",
                role_name=contract.smoke_test_runner_role_name(stage.name, stage.region),
                assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
                description=f"Runs the smoke test against {stage.name} after it is deployed.",
            ),
            install_commands=["python -m pip install --quiet boto3 -c constraints.txt"],
            commands=[
                "python -m scripts.smoke "
                f"--region {stage.region} --timeout {contract.SMOKE_TEST_TIMEOUT_SECONDS}"
            ],
            env_from_cfn_outputs={
                contract.SMOKE_TEST_ENV_BUCKET_NAME: outputs[contract.OUTPUT_BUCKET_NAME],
                contract.SMOKE_TEST_ENV_TABLE_NAME: outputs[contract.OUTPUT_TABLE_NAME],
                contract.SMOKE_TEST_ENV_ROLE_ARN: outputs[contract.OUTPUT_SMOKE_TEST_ROLE_ARN],
            },
            # Only the stage's own smoke-test role, which in turn can only touch
            # smoke-test objects and items (service/stack.py).
            role_policy_statements=[
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role_arn])
            ],
        )

    def _bootstrap_role_arn(self, stage: StageConfig, purpose: str) -> str:
        return self.format_arn(
            service="iam",
            region="",
            account=stage.account,
            resource="role",
            resource_name=(
                f"cdk-{BOOTSTRAP_QUALIFIER}-{purpose}-role-{stage.account}-{stage.region}"
            ),
        )
