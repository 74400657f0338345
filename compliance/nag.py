"""cdk-nag (AwsSolutions) as a CDK validation plugin over every stack of the app.

cdk-nag 3 plugs into CDK's policy validation: registered once on the App, it checks every
stack, those inside Stages (the dev stage, the pipeline's stages) included, and a finding
fails `cdk synth` with the construct path, the rule and a description. The report is also
written to cdk.out/validation-report.json, which tests/infra/test_compliance.py reads.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

# A reviewer must be able to judge an acknowledgement from its reason alone.
MIN_REASON_LENGTH = 40


def add_compliance_checks(app: App) -> None:
    """Check every stack of the app against the AwsSolutions pack at synth time."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one detailed finding on `scope` (and the constructs below it).

    `finding` is the id cdk-nag reports, with its detail where it has one, e.g.
    `AwsSolutions-IAM5[Resource::*]`: each wildcard is acknowledged on its own, so a new
    one still fails the build.
    """
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledging {finding} needs a reason a reviewer can judge: {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def arn_partition(construct: IConstruct) -> str:
    """How cdk-nag shows the partition of `construct`'s stack in an ARN of a finding.

    The literal (`aws`, `aws-cn`, `aws-eusc`...) when the stack's region fixes it (CDK's
    `@aws-cdk/core:enablePartitionLiterals`), else the `<AWS::Partition>` reference.
    """
    stack = Stack.of(construct)
    resolved = stack.resolve(stack.partition)
    return resolved if isinstance(resolved, str) else "<AWS::Partition>"


def logical_id(construct: IConstruct) -> str:
    """How cdk-nag names a resource in a finding's detail (`<LogicalId.Arn>`)."""
    stack = Stack.of(construct)
    resource = cast(CfnElement, construct.node.default_child or construct)
    return str(stack.resolve(stack.get_logical_id(resource)))
