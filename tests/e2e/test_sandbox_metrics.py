"""The sandbox publishes what AWS would: Lambda's metrics per invocation, the handler's EMF."""

from __future__ import annotations

import time

import pytest

import contract
from sandbox import Faults, Sandbox
from sandbox.metrics import LAMBDA_NAMESPACE

pytestmark = pytest.mark.e2e


def test_each_invocation_fills_the_metric_store_and_moto(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults())
    start = time.time() // 60 * 60
    for n in range(3):
        sandbox.upload(f"metrics/file {n}.txt", b"x")
    sandbox.wait_until_idle(timeout=60)
    end = time.time() + 60

    name = sandbox.function_name
    alias = {"FunctionName": name, "Resource": f"{name}:{contract.ALIAS_NAME}"}

    def total(namespace: str, metric: str, dimensions: dict[str, str]) -> float:
        points = sandbox.metrics.statistic(namespace, metric, dimensions, "Sum", 60, start, end)
        return sum(value for _, value in points)

    assert total(LAMBDA_NAMESPACE, "Invocations", alias) >= 3
    assert total(LAMBDA_NAMESPACE, "Invocations", {**alias, "ExecutedVersion": "1"}) >= 3
    assert total(LAMBDA_NAMESPACE, "Errors", alias) == 0
    # The handler's own EMF metrics, read from its real log output.
    stage = sandbox.function_environment.get(contract.STAGE_NAME_ENV, "")
    business = {contract.METRICS_SERVICE_DIMENSION: contract.SERVICE_NAME}
    if stage:
        business[contract.METRICS_STAGE_DIMENSION] = stage
    assert total(contract.METRICS_NAMESPACE, contract.METRIC_FILES_RECORDED, business) >= 3
    # ...and mirrored into the emulator's CloudWatch, where Sum works as in AWS.
    listed = sandbox.client("cloudwatch").list_metrics(Namespace=LAMBDA_NAMESPACE)["Metrics"]
    assert any(m["MetricName"] == "Invocations" for m in listed)
