"""What a drill shows: the minute-by-minute timeline, the verdict line, the e-mails, JSON.

Timeline columns (rows from :meth:`sandbox.drill.rehearsal.Drill.timeline`): the simulated minute
(UTC) and its offset from the deployment's start; the share of traffic on version 2 at
the minute's end; invocations/errors of each version through the alias (Lambda's
ExecutedVersion dimension); p99 duration of the alias (ms); each gating alarm's state
after the evaluation at the minute's end; and what happened (hook, traffic shifts, alarm
changes, the decision).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sandbox.drill.rehearsal import NEW, OLD, DrillOptions, DrillResult
from sandbox.outbox import render_email


def verdict(result: DrillResult, options: DrillOptions) -> str:
    """One line: how the release ended, and why."""
    v2 = f"version {NEW} took {result.invocations.get(NEW, 0)} invocations through the alias, "
    v2 += f"{result.errors.get(NEW, 0)} failed"
    when = ""
    if result.decided_at is not None:
        minutes = int((result.decided_at - result.deployed_at) // 60)
        when = f" {minutes} min after the deployment started"
    if result.state == "Failed":
        return f"ROLLED BACK before any traffic: {result.cause}; {v2}."
    if result.state == "Stopped":
        return (
            f"ROLLED BACK{when}: {result.cause} in ALARM; the alias is back on version {OLD}; {v2}."
        )
    unnoticed = (
        f" The fault ({options.fault.describe()}) went unnoticed by the gate."
        if options.fault.kind != "none"
        else ""
    )
    return (
        f"SUCCEEDED{when}: version {NEW} took 100% with no gating alarm in ALARM; {v2}.{unnoticed}"
    )


def render_timeline(rows: list[dict[str, Any]], gating: list[str]) -> str:
    """The timeline as a fixed-width table."""
    short = _short_names(gating)
    header = (
        f"{'minute':<7}{'t':>4} {'v2 %':>5} {'v1 inv/err':>11} {'v2 inv/err':>11} {'p99 ms':>8}  "
        + "  ".join(f"{s:<{max(len(s), 5)}}" for s in short)
        + "  what happened"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        v1, v2 = row["versions"][OLD], row["versions"][NEW]
        p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.0f}"
        states = "  ".join(
            f"{row['alarms'].get(name, ''):<{max(len(s), 5)}}"
            for name, s in zip(gating, short, strict=True)
        )
        events = "; ".join(row["events"])
        lines.append(
            f"{row['minute']:<7}{row['offset']:>+4} {row['weight']:>5g} "
            f"{v1['invocations']:>6}/{v1['errors']:<4} {v2['invocations']:>6}/{v2['errors']:<4} "
            f"{p99:>8}  {states}  {events}"
        )
    return "\n".join(lines)


def render_emails(result: DrillResult, region: str) -> str:
    separator = "\n" + "=" * 78 + "\n"
    return separator.join(render_email(n, region) for n in result.notifications)


def write_json(path: Path, result: DrillResult, options: DrillOptions) -> None:
    document = {
        "verdict": verdict(result, options),
        "outcome": result.outcome,
        "deployment": {
            "id": result.deployment_id,
            "state": result.state,
            "cause": result.cause,
            "startedAt": result.deployed_at,
            "decidedAt": result.decided_at,
        },
        "options": {**asdict(options), "fault": asdict(options.fault)},
        "gatingAlarms": result.gating,
        "timeline": result.rows,
        "notifications": [n.to_json() for n in result.notifications],
        "failureQueue": result.failure_queue,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _short_names(names: list[str]) -> list[str]:
    """Alarm names without their shared prefix (upload-ledger-<stage>-)."""
    if len(names) < 2:
        return [
            n.rsplit("-", 2)[-2] + "-" + n.rsplit("-", 2)[-1] if n.count("-") >= 2 else n
            for n in names
        ]
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[: prefix.rfind("-") + 1]
    return [n[len(prefix) :] for n in names]
