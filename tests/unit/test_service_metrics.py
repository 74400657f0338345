"""Service metrics the sandbox publishes for what it sees pass: Lambda's concurrency."""

from __future__ import annotations

from sandbox.metrics import LAMBDA_NAMESPACE, MetricStore
from sandbox.runtime import InvocationRecord
from sandbox.service_metrics import ServiceMetrics

T0 = 1_700_000_040.0  # a minute boundary
FN = "ledger-fn"


def test_concurrent_executions_are_the_runtimes_count_under_lambdas_dimension_sets() -> None:
    store = MetricStore()
    metrics = ServiceMetrics(
        lambda: store,
        bucket_name="",
        bucket_filters=(),
        table_names=(),
        queue_urls=(),
        clients=lambda service: None,
    )
    for started, concurrent in ((T0 + 1, 1), (T0 + 2, 3), (T0 + 70, 2)):
        record = InvocationRecord(
            started_at=started,
            duration_ms=5.0,
            ok=True,
            executed_version="1",
            qualifier="live",
            concurrent_executions=concurrent,
        )
        metrics.observe_invocation(FN, record)

    alias = {"FunctionName": FN, "Resource": f"{FN}:live"}
    for dimensions in ({}, {"FunctionName": FN}, alias):
        maximum = store.statistic(
            LAMBDA_NAMESPACE, "ConcurrentExecutions", dimensions, "Maximum", 60, T0, T0 + 120
        )
        assert maximum == [(T0, 3.0), (T0 + 60, 2.0)]
    # Lambda publishes concurrency per function, per alias and account-wide only.
    assert len(store.metrics()) == 3
