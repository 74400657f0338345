"""The fault a drill's release carries: a wrapper around the real handler, and its rules.

A drill's version 2 is the function's own asset plus this module, with the entry point
`drill_fault.lambda_handler`: it decides per invocation whether to fail (as the fault
says), and otherwise runs the real handler. It is copied into the version's asset, so it
uses only the standard library (the worker runs with `python -I`); the drill's model
path imports the same rules, so both paths fail the same invocations.

Faults (`DRILL_FAULT`):
- ``errors:SHARE``: that share of invocations raise;
- ``latency:MS``: every invocation takes MS milliseconds longer (the drill adds them to
  the invocation's duration on its simulated clock; nothing sleeps);
- ``crash``: the runtime exits mid-invocation (Runtime.ExitError);
- ``keys:GLOB``: an invocation fails if one of its object keys matches GLOB
  (fnmatch, on the decoded key), so a synthetic health check under another prefix passes.
`DRILL_BACKGROUND_ERRORS` (a share) fails invocations of any version the same way;
`DRILL_SEED` makes the choices reproducible; `DRILL_HANDLER` names the handler it wraps
(the template's Handler, e.g. handler.app.lambda_handler).
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import math
import os
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

ENV_FAULT = "DRILL_FAULT"
ENV_BACKGROUND = "DRILL_BACKGROUND_ERRORS"
ENV_SEED = "DRILL_SEED"
ENV_HANDLER = "DRILL_HANDLER"  # the wrapped handler's entry point, from the template
ENTRY = "drill_fault.lambda_handler"
KINDS = ("errors", "latency", "crash", "keys")
# Lambda's longest timeout (900 s): more latency than that can only be a timeout.
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
MAX_LATENCY_MS = 900_000


class DrillFaultError(RuntimeError):
    """The failure a drill injects (what the function's logs and metrics show)."""


@dataclass(frozen=True)
class Fault:
    """A parsed --fault: kind and argument (share, milliseconds or glob)."""

    kind: str = "none"
    share: float = 0.0
    latency_ms: float = 0.0
    glob: str = ""

    @classmethod
    def parse(cls, spec: str | None) -> Fault:
        """`errors:0.2`, `latency:25000`, `crash`, `keys:uploads/*.csv`, or empty/None."""
        if not spec or spec == "none":
            return cls()
        kind, _, argument = spec.partition(":")
        if kind == "crash" and not argument:
            return cls("crash")
        if kind == "errors":
            share = _number(spec, argument)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"--fault {spec}: the share must be between 0 and 1")
            return cls("errors", share=share)
        if kind == "latency":
            latency = _number(spec, argument)
            if not (math.isfinite(latency) and 0 <= latency <= MAX_LATENCY_MS):
                raise ValueError(
                    f"--fault {spec}: the latency must be 0 to {MAX_LATENCY_MS} milliseconds"
                )
            return cls("latency", latency_ms=latency)
        if kind == "keys" and argument:
            return cls("keys", glob=argument)
        raise ValueError(f"--fault {spec}: use errors:SHARE (0-1), latency:MS, crash or keys:GLOB")

    def describe(self) -> str:
        return {
            "none": "no fault",
            "errors": f"{self.share:.0%} of invocations fail",
            "latency": f"+{self.latency_ms:.0f} ms per invocation",
            "crash": "the runtime exits on every invocation",
            "keys": f"fails on keys matching {self.glob}",
        }[self.kind]


def _number(spec: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--fault {spec}: {text!r} is not a number") from None


def event_keys(event: Any) -> list[str]:
    """The decoded object keys of an S3 notification (S3 encodes them as quote_plus)."""
    records = event.get("Records", []) if isinstance(event, dict) else []
    return [
        unquote_plus(str(r.get("s3", {}).get("object", {}).get("key", "")))
        for r in records
        if isinstance(r, dict)
    ]


class Plan:
    """Decides, invocation by invocation, what the fault does (seeded)."""

    def __init__(self, fault: Fault, background_errors: float, seed: int) -> None:
        self.fault = fault
        self.background_errors = background_errors
        self._random = random.Random(seed)

    def failure(self, event: Any) -> str | None:
        """Why this invocation fails, or None when it should run normally."""
        draw_fault, draw_background = self._random.random(), self._random.random()
        if self.fault.kind == "crash":
            return "crash"
        if self.fault.kind == "errors" and draw_fault < self.fault.share:
            return f"drill fault: {self.fault.share:.0%} of invocations fail"
        if self.fault.kind == "keys":
            matching = [k for k in event_keys(event) if fnmatch.fnmatchcase(k, self.fault.glob)]
            if matching:
                return f"drill fault: key {matching[0]!r} matches {self.fault.glob}"
        if draw_background < self.background_errors:
            return f"drill background error ({self.background_errors:.1%} of invocations)"
        return None


def _plan_from_environment() -> Plan:
    return Plan(
        Fault.parse(os.environ.get(ENV_FAULT)),
        float(os.environ.get(ENV_BACKGROUND) or 0.0),
        int(os.environ.get(ENV_SEED) or 0),
    )


def _load_handler(entry: str) -> Any:
    """The function's own handler (`module.function`, the template's Handler)."""
    module_name, _, function_name = entry.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


_plan: Plan | None = None
# Loaded as the function: import its handler in the init phase, as Lambda does.
_handler: Any = _load_handler(os.environ[ENV_HANDLER]) if ENV_HANDLER in os.environ else None


def lambda_handler(event: Any, context: Any) -> Any:
    """The version's entry point: the fault, else the real handler."""
    global _plan  # noqa: PLW0603 - one plan per execution environment, as Lambda keeps state
    if _plan is None:
        _plan = _plan_from_environment()
    reason = _plan.failure(event)
    if reason == "crash":
        print(json.dumps({"level": "ERROR", "message": "drill fault: the runtime exits"}))
        os._exit(1)
    if reason is not None:
        raise DrillFaultError(reason)
    return _handler(event, context)
