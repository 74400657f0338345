"""Synth time: the whole app against a one-stack minimal app, each in a fresh process.

Timed inside the process from before ``import aws_cdk`` to the end of ``app.synth()``,
so both pay jsii's start-up and the difference is what our constructs cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from bench.settings import REPO_ROOT, Sizes
from bench.stats import median, ratio

_WHOLE_APP = """
import json, sys, time
started = time.perf_counter_ns()
import aws_cdk as cdk
from app import build_app
from config.settings import cdk_json_context
app = cdk.App(context=cdk_json_context(), outdir=sys.argv[1])
build_app(app)
app.synth()
print(json.dumps(time.perf_counter_ns() - started))
"""
_MINIMAL_APP = """
import json, sys, time
started = time.perf_counter_ns()
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
app = cdk.App(outdir=sys.argv[1])
stack = cdk.Stack(app, "Minimal")
sqs.Queue(stack, "Queue")
app.synth()
print(json.dumps(time.perf_counter_ns() - started))
"""


def _synth_ms(code: str) -> float:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("CDK_CONTEXT_JSON", None)
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as outdir:
        completed = subprocess.run(  # noqa: S603 -- our own interpreter and code, no shell
            [sys.executable, "-c", code, outdir],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return int(json.loads(completed.stdout.strip().splitlines()[-1])) / 1e6


def measure_synth(sizes: Sizes) -> dict[str, Any]:
    """Median synth time of each app, interleaved."""
    whole: list[float] = []
    minimal: list[float] = []
    for _ in range(sizes.synth_repeats):
        whole.append(_synth_ms(_WHOLE_APP))
        minimal.append(_synth_ms(_MINIMAL_APP))
    return {
        "repeats": sizes.synth_repeats,
        "app_ms": median(whole),
        "minimal_app_ms": median(minimal),
        "ratio": ratio(median(whole), median(minimal)),
    }
