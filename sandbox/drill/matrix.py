"""`make drill-matrix`: at what traffic does the release gate catch a bad version?

Rehearses releases across traffic levels (1, 10, 100, 1,000 uploads a minute) against
bad versions (100%, 20% and 5% errors; latency past the p99 gate; a failure on real
uploads' keys that the hook's health check cannot see) and a clean version with 0.5%
background errors, over several seeds, and writes a table to bench-results/.

It runs the drill's model path (`--model`): routing, Lambda's retries, metrics, every
alarm of cdk.out, CodeDeploy and the outbox are the drill's own code, but no handler
runs (the fault's rules decide failures; durations are modelled). 1,000 real uploads a
minute for ten simulated minutes would take far longer than the study's budget on a
laptop; the drill itself (`make drill`) keeps the real-upload path.

    python -m sandbox.drill.matrix [--seeds 3] [--clean-seeds 10] [--output bench-results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import settings
from sandbox.drill.fault import Fault
from sandbox.drill.rehearsal import DrillOptions, DrillResult, Rehearsal

TRAFFIC = (1.0, 10.0, 100.0, 1000.0)
# (label, fault, background errors): what the study releases.
SCENARIOS = (
    ("100% errors", "errors:1.0", 0.0),
    ("20% errors", "errors:0.2", 0.0),
    ("5% errors", "errors:0.05", 0.0),
    ("+25 s latency (p99 gate 24 s)", "latency:25000", 0.0),
    ("fails real uploads, hook passes", "keys:uploads/*", 0.0),
    ("clean, 0.5% background errors", "", 0.005),
)


@dataclass(frozen=True)
class Cell:
    """One scenario at one traffic level, over its seeds."""

    scenario: str
    traffic: float
    runs: int
    by_hook: int  # rollbacks before any traffic (the pre-traffic hook failed)
    alarm_minutes: tuple[int, ...]  # per alarm rollback: minutes after the deployment started

    @property
    def rollbacks(self) -> int:
        return self.by_hook + len(self.alarm_minutes)

    def text(self, clean: bool) -> str:
        if clean:
            return f"{self.rollbacks}/{self.runs} false rollbacks"
        if self.rollbacks == 0:
            return f"missed {self.runs}/{self.runs}"
        parts = [f"hook {self.by_hook}"] if self.by_hook else []
        if self.alarm_minutes:
            low, high = min(self.alarm_minutes), max(self.alarm_minutes)
            span = f"+{low}" if low == high else f"+{low}..+{high}"
            parts.append(f"alarm {len(self.alarm_minutes)} at {span} min")
        missed = self.runs - self.rollbacks
        return f"caught {self.rollbacks}/{self.runs} ({', '.join(parts)})" + (
            f", missed {missed}" if missed else ""
        )


def run_matrix(cdk_out: Path, seeds: int, clean_seeds: int, work: Path) -> list[Cell]:
    """Every scenario at every traffic level, in one sandbox."""
    from sandbox.sandbox import Sandbox  # noqa: PLC0415 - moto loads only when needed

    cells = []
    with Sandbox(cdk_out, start_runtime=False) as sandbox:
        for label, fault, background in SCENARIOS:
            for traffic in TRAFFIC:
                results = [
                    _rehearse(sandbox, cdk_out, work, fault, background, traffic, seed)
                    for seed in range(1, 1 + (clean_seeds if not fault else seeds))
                ]
                cells.append(_cell(label, traffic, results))
                print(f"  {label:<34} {traffic:>6g}/min  {cells[-1].text(not fault)}", flush=True)
    return cells


def _rehearse(  # noqa: PLR0917 - one call site, the study's coordinates in order
    sandbox: Any,
    cdk_out: Path,
    work: Path,
    fault: str,
    background: float,
    traffic: float,
    seed: int,
) -> DrillResult:
    options = DrillOptions(
        fault=Fault.parse(fault),
        background_errors=background,
        uploads_per_minute=traffic,
        seed=seed,
        model=True,
    )
    return Rehearsal(cdk_out, options, work / "outbox", work / "drill").run(sandbox)


def _cell(label: str, traffic: float, results: list[DrillResult]) -> Cell:
    stopped = [r for r in results if r.state == "Stopped" and r.decided_at is not None]
    return Cell(
        scenario=label,
        traffic=traffic,
        runs=len(results),
        by_hook=sum(r.state == "Failed" for r in results),
        alarm_minutes=tuple(int((r.decided_at or 0) - r.deployed_at) // 60 for r in stopped),
    )


def markdown(cells: list[Cell]) -> str:
    """The study as a Markdown table: one row per scenario, one column per traffic level."""
    header = "| release | " + " | ".join(f"{t:g}/min" for t in TRAFFIC) + " |"
    lines = [header, "| --- |" + " --- |" * len(TRAFFIC)]
    for label, fault, _ in SCENARIOS:
        row = [c.text(not fault) for c in cells if c.scenario == label]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.drill.matrix", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--seeds", type=int, default=3, help="runs per bad release and traffic")
    parser.add_argument("--clean-seeds", type=int, default=10, help="runs of the clean release")
    parser.add_argument("--output", type=Path, default=Path("bench-results"))
    parser.add_argument("--name", default="drill-matrix", help="file name (without extension)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.clean_seeds < 1:
        print("drill-matrix: --seeds and --clean-seeds must be at least 1", file=sys.stderr)
        return 2
    began = time.monotonic()
    cells = run_matrix(
        args.cdk_out,
        args.seeds,
        args.clean_seeds,
        Path(settings.SANDBOX_STATE_DIR) / "drill-matrix",
    )
    table = markdown(cells)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"{args.name}.md").write_text(table + "\n", encoding="utf-8")
    document = {
        "traffic": TRAFFIC,
        "cells": [{**c.__dict__, "text": c.text(c.scenario.startswith("clean"))} for c in cells],
        "seconds": round(time.monotonic() - began, 1),
    }
    (args.output / f"{args.name}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{table}\n\nwritten to {args.output}/{args.name}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
