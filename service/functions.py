"""How this project makes a Python Lambda function: the same runtime and architecture
everywhere, its own role with no AWS-managed policy, its own log group with retention, and
log permissions on that group only. The ledger function and the pre-traffic hook use it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from compliance.nag import acknowledge
from service import settings

# One runtime for every function: the one the pinned Powertools layer is published for.
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    role_description: str,
    asset_root: str,
    asset_excludes: list[str],
    handler: str,
    memory_mb: int,
    timeout: Duration,
    environment: dict[str, str],
    removal_policy: RemovalPolicy,
    traced: bool = False,
    **options: Any,
) -> lambda_.Function:
    """A function `construct_id` with `<id>Role` and `<id>Logs` beside it; `traced` turns on
    X-Ray active tracing; `options` are further `lambda_.Function` properties."""
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=settings.LOG_RETENTION,
        removal_policy=removal_policy,
    )
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=lambda_.Code.from_asset(asset_root, exclude=asset_excludes),
        handler=handler,
        memory_size=memory_mb,
        timeout=timeout,
        role=role,
        log_group=log_group,
        environment=environment,
        tracing=lambda_.Tracing.ACTIVE if traced else lambda_.Tracing.DISABLED,
        **options,
    )
    # The role's only log permissions are on this function's own log group.
    log_group.grant_write(role)
    acknowledge(
        function,
        "AwsSolutions-L1",
        "python3.12 is the runtime of the pinned AWS Powertools layer "
        "(POWERTOOLS_LAYER_PARAMETER) the handler is tested against; every function moves to "
        "a newer runtime together with the layer and the tests, deliberately, not at synth.",
    )
    if traced:
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which "
            "support no resource-level permissions; every other statement names its resource "
            "(tests/infra/test_service_stack.py pins this).",
        )
    return function
