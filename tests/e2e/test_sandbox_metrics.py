"""The sandbox publishes what AWS would: Lambda's metrics per invocation, the handler's EMF."""

from __future__ import annotations

import time

import pytest

import contract
from sandbox import Faults, Sandbox
from sandbox.metrics import LAMBDA_NAMESPACE

pytestmark = pytest.mark.e2e


def _alias(sb: Sandbox) -> dict[str, str]:
    """The dimensions of the alias's AWS/Lambda metrics."""
    return {
        "FunctionName": sb.function_name,
        "Resource": f"{sb.function_name}:{contract.ALIAS_NAME}",
    }


def _business(sb: Sandbox) -> dict[str, str]:
    """The dimensions of the handler's EMF metrics (service, and stage when it has one)."""
    stage = sb.function_environment.get(contract.STAGE_NAME_ENV, "")
    business = {contract.METRICS_SERVICE_DIMENSION: contract.SERVICE_NAME}
    if stage:
        business[contract.METRICS_STAGE_DIMENSION] = stage
    return business


def _total(sb: Sandbox, namespace: str, metric: str, dimensions: dict[str, str]) -> float:
    """Sum of one metric over the last hour (and the next minute), per-minute periods."""
    end = time.time() + 60
    start = (end - 3600) // 60 * 60
    points = sb.metrics.statistic(namespace, metric, dimensions, "Sum", 60, start, end)
    return sum(value for _, value in points)


def test_each_invocation_fills_the_metric_store_and_moto(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults())
    alias = _alias(sandbox)
    before = {
        "invocations": _total(sandbox, LAMBDA_NAMESPACE, "Invocations", alias),
        "version": _total(
            sandbox, LAMBDA_NAMESPACE, "Invocations", {**alias, "ExecutedVersion": "1"}
        ),
        "errors": _total(sandbox, LAMBDA_NAMESPACE, "Errors", alias),
        "recorded": _total(
            sandbox, contract.METRICS_NAMESPACE, contract.METRIC_FILES_RECORDED, _business(sandbox)
        ),
    }
    for n in range(3):
        sandbox.upload(f"metrics/file {n}.txt", b"x")
    sandbox.wait_until_idle(timeout=60)

    assert _total(sandbox, LAMBDA_NAMESPACE, "Invocations", alias) >= before["invocations"] + 3
    version = {**alias, "ExecutedVersion": "1"}
    assert _total(sandbox, LAMBDA_NAMESPACE, "Invocations", version) >= before["version"] + 3
    assert _total(sandbox, LAMBDA_NAMESPACE, "Errors", alias) == before["errors"]
    # The handler's own EMF metrics, read from its real log output.
    recorded = _total(
        sandbox, contract.METRICS_NAMESPACE, contract.METRIC_FILES_RECORDED, _business(sandbox)
    )
    assert recorded >= before["recorded"] + 3
    # ...and mirrored into the emulator's CloudWatch, where Sum works as in AWS.
    listed = sandbox.client("cloudwatch").list_metrics(Namespace=LAMBDA_NAMESPACE)["Metrics"]
    assert any(m["MetricName"] == "Invocations" for m in listed)


def test_a_redrive_publishes_its_invocations_as_any_invocation(sandbox: Sandbox) -> None:
    """The runbook's redrive invokes the alias: Lambda counts it, the handler's EMF counts
    what it records, so "uploads vs files recorded" agrees with the ledger afterwards."""
    alias = _alias(sandbox)
    sandbox.set_faults(Faults(dynamodb_access_denied=True))
    for n in range(2):
        sandbox.upload(f"metrics/redriven {n}.txt", b"x")
    sandbox.wait_until_idle(timeout=60)
    invocations = _total(sandbox, LAMBDA_NAMESPACE, "Invocations", alias)
    errors = _total(sandbox, LAMBDA_NAMESPACE, "Errors", alias)
    recorded = _total(
        sandbox, contract.METRICS_NAMESPACE, contract.METRIC_FILES_RECORDED, _business(sandbox)
    )

    sandbox.set_faults(Faults())
    assert sandbox.redrive().redriven == 2

    assert _total(sandbox, LAMBDA_NAMESPACE, "Invocations", alias) == invocations + 2
    assert _total(sandbox, LAMBDA_NAMESPACE, "Errors", alias) == errors
    after = _total(
        sandbox, contract.METRICS_NAMESPACE, contract.METRIC_FILES_RECORDED, _business(sandbox)
    )
    assert after == recorded + 2
