"""Cold start: importing the handler module (which builds its client) in a fresh process.

Each sample is a new interpreter, timed from inside around the one import, so
interpreter start-up (the same for both) is left out. One extra run with
``-X importtime`` splits the handler's import into the libraries it pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.environment import handler_environment
from bench.settings import (
    BARE_HANDLER_MODULE,
    COLD_RATIO_TARGET,
    REAL_HANDLER_MODULE,
    REPO_ROOT,
    Sizes,
)
from bench.stats import median, ratio

_TIMED_IMPORT = (
    "import importlib, json, time\n"
    "started = time.perf_counter_ns()\n"
    "importlib.import_module({module!r})\n"
    "print(json.dumps(time.perf_counter_ns() - started))\n"
)
# Top-level imports worth naming in the report: what each one buys is in the README.
SHARE_MODULES = (
    "boto3",
    "aws_xray_sdk.core",
    "aws_lambda_powertools",
    "aws_lambda_powertools.utilities.data_classes",
    "handler.ledger",
    "handler.repository",
)


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own interpreter and code, no shell
        [sys.executable, *flags, "-c", code],
        cwd=REPO_ROOT,
        env=handler_environment(),
        capture_output=True,
        text=True,
        check=True,
    )


def _import_ms(module: str) -> float:
    return int(json.loads(_python(_TIMED_IMPORT.format(module=module)).stdout)) / 1e6


def import_shares(module: str) -> dict[str, float]:
    """Milliseconds each named library (with what it imports) adds to importing ``module``.

    ``module`` itself is reported as its own (self) time: for the handler, that is
    mostly building the DynamoDB client and the Powertools objects at import.
    """
    report = _python(f"import {module}", "-X", "importtime").stderr
    shares: dict[str, float] = {}
    for line in report.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        name = name.strip()
        if name == module:
            shares[f"{module} (self)"] = int(self_us) / 1000
            shares[f"{module} (total)"] = int(cumulative_us) / 1000
        elif name in SHARE_MODULES and name not in shares:
            # First (outermost) import of a library: its cumulative time is its share.
            shares[name] = int(cumulative_us) / 1000
    return shares


def measure_cold_start(sizes: Sizes) -> dict[str, Any]:
    """Median import time of the handler and of the bare baseline, interleaved."""
    handler_ms: list[float] = []
    baseline_ms: list[float] = []
    for _ in range(sizes.cold_repeats):
        handler_ms.append(_import_ms(REAL_HANDLER_MODULE))
        baseline_ms.append(_import_ms(BARE_HANDLER_MODULE))
    handler_median, baseline_median = median(handler_ms), median(baseline_ms)
    return {
        "repeats": sizes.cold_repeats,
        "handler_ms": handler_median,
        "baseline_ms": baseline_median,
        "ratio": ratio(handler_median, baseline_median),
        "target_ratio": COLD_RATIO_TARGET,
        "import_shares_ms": import_shares(REAL_HANDLER_MODULE),
    }
