"""The process environment the handlers run in: fake AWS, the emulator, Lambda's variables."""

from __future__ import annotations

import os

import contract
from bench.settings import METRICS_NAMESPACE, REGION, REPO_ROOT, SERVICE_NAME, TABLE_NAME
from local_aws import FAKE_CREDENTIALS

# A developer's own AWS set-up must not leak into a measurement (or reach an account).
_DROPPED = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "POWERTOOLS_TRACE_DISABLED",
    "_X_AMZN_TRACE_ID",
)


def handler_environment(endpoint: str | None = None) -> dict[str, str]:
    """What Lambda would set for the function, plus the emulator endpoint when given."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            contract.TABLE_NAME_ENV: TABLE_NAME,
            contract.POWERTOOLS_SERVICE_NAME_ENV: SERVICE_NAME,
            contract.POWERTOOLS_METRICS_NAMESPACE_ENV: METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # Lambda's marker: the X-Ray SDK and Powertools take their in-Lambda paths.
            "LAMBDA_TASK_ROOT": str(REPO_ROOT),
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env
