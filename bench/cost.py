"""Estimated cost per million uploads, from the measured figures and public list prices.

One upload is one S3 PUT, one notification of one record, one async Lambda invocation
and one DynamoDB conditional put. The prices are AWS's public on-demand list prices
for US East (N. Virginia), without free tiers or savings plans; the stages deploy to
eu-central-1, where DynamoDB, S3 and CloudWatch Logs cost roughly 10-25 % more.
Check them against the pricing pages before quoting the estimate.
"""

from __future__ import annotations

import math
from typing import Any

PRICES_REGION = "us-east-1"
PRICES_AS_OF = "2025 public list prices (aws.amazon.com/<service>/pricing)"
LAMBDA_ARM64_USD_PER_GB_SECOND = 0.0000133334  # first 7.5 billion GB-s a month
LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
DYNAMODB_USD_PER_MILLION_WRU = 0.625  # on-demand, Standard table class
S3_STANDARD_USD_PER_THOUSAND_PUTS = 0.005
CLOUDWATCH_LOGS_USD_PER_GB_INGESTED = 0.50  # Standard log class
XRAY_USD_PER_MILLION_TRACES = 5.00
# Lambda's default X-Ray rule: the first request each second and 5 % of the rest. At a
# steady million uploads a day nearly all traces fall in the 5 %.
XRAY_SAMPLED_FRACTION = 0.05
# An item up to 1 KB costs 1 WRU; a conditional put that fails (a duplicate or stale
# event) still costs it. Keys near S3's 1,024-byte maximum make 2 WRU.
WRU_PER_UPLOAD = 1
UPLOADS = 1_000_000
BYTES_PER_GB = 1024**3


def estimate(memory_mb: int, ms_per_event: float, log_bytes_per_event: float) -> dict[str, Any]:
    """Dollars per million uploads, item by item, with the assumptions next to them."""
    billed_ms = math.ceil(ms_per_event)  # Lambda bills duration in whole milliseconds
    gb_seconds = UPLOADS * (memory_mb / 1024) * (billed_ms / 1000)
    items = {
        "lambda_duration": gb_seconds * LAMBDA_ARM64_USD_PER_GB_SECOND,
        "lambda_requests": UPLOADS / 1e6 * LAMBDA_USD_PER_MILLION_REQUESTS,
        "dynamodb_writes": UPLOADS * WRU_PER_UPLOAD / 1e6 * DYNAMODB_USD_PER_MILLION_WRU,
        "s3_puts": UPLOADS / 1000 * S3_STANDARD_USD_PER_THOUSAND_PUTS,
        "cloudwatch_logs": UPLOADS
        * log_bytes_per_event
        / BYTES_PER_GB
        * CLOUDWATCH_LOGS_USD_PER_GB_INGESTED,
        "xray_traces": UPLOADS * XRAY_SAMPLED_FRACTION / 1e6 * XRAY_USD_PER_MILLION_TRACES,
    }
    return {
        "uploads": UPLOADS,
        "usd": items,
        "usd_total": sum(items.values()),
        "assumptions": {
            "memory_mb": memory_mb,
            "architecture": "arm64",
            "billed_ms_per_event": billed_ms,
            "log_bytes_per_event": log_bytes_per_event,
            "wru_per_upload": WRU_PER_UPLOAD,
            "xray_sampled_fraction": XRAY_SAMPLED_FRACTION,
            "prices_region": PRICES_REGION,
            "prices_as_of": PRICES_AS_OF,
            "prices": {
                "lambda_arm64_usd_per_gb_second": LAMBDA_ARM64_USD_PER_GB_SECOND,
                "lambda_usd_per_million_requests": LAMBDA_USD_PER_MILLION_REQUESTS,
                "dynamodb_usd_per_million_wru": DYNAMODB_USD_PER_MILLION_WRU,
                "s3_standard_usd_per_thousand_puts": S3_STANDARD_USD_PER_THOUSAND_PUTS,
                "cloudwatch_logs_usd_per_gb": CLOUDWATCH_LOGS_USD_PER_GB_INGESTED,
                "xray_usd_per_million_traces": XRAY_USD_PER_MILLION_TRACES,
            },
            "duration_note": (
                "measured on this machine against a local emulator; Lambda at this memory "
                "has a fraction of a vCPU and real DynamoDB latency, so check the Duration "
                "metric after deploying"
            ),
        },
    }
