"""The printed table: one line per figure, the baseline and ratio next to it."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str]


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _warm_rows(warm: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for records, row in warm["by_records_per_event"].items():
        rows.append(
            (
                f"warm, {records} record(s)/event",
                f"{_ms(row['handler']['median_ms_per_event'])} "
                f"({_ms(row['handler']['median_ms_per_record'])}/record)",
                _ms(row["baseline"]["median_ms_per_event"]),
                f"{row['ratio']:.2f}x (target {warm['target_ratio']})",
            )
        )
        rows.append(
            (
                "  split: logic+conditional put, observability",
                f"{row['logic_ratio']:.2f}x, {row['observability_ratio']:.2f}x",
                _ms(row["undecorated"]["median_ms_per_event"]) + " undecorated",
                "",
            )
        )
    rows.append(
        (
            "per-record cost, 100 vs 1 record/event",
            f"{warm['per_record_growth']:.2f}x",
            f"{warm['baseline_per_record_growth']:.2f}x",
            "flat = 1",
        )
    )
    return rows


def _rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "warm" in results:
        rows += _warm_rows(results["warm"])
    cold = results.get("cold_start")
    if cold:
        rows.append(
            (
                "cold start (import + client)",
                _ms(cold["handler_ms"]),
                _ms(cold["baseline_ms"]),
                f"{cold['ratio']:.2f}x (target {cold['target_ratio']})",
            )
        )
        for name, share in cold["import_shares_ms"].items():
            rows.append((f"  import {name}", _ms(share), "", ""))
    synth = results.get("synth")
    if synth and "skipped" not in synth:
        rows.append(
            (
                "synth (whole app vs one stack)",
                _ms(synth["app_ms"]),
                _ms(synth["minimal_app_ms"]),
                f"{synth['ratio']:.2f}x",
            )
        )
    burst = results.get("burst", {})
    if "skipped" in burst:
        rows.append(("burst through the sandbox", f"skipped: {burst['skipped']}", "", ""))
    elif burst:
        rows.append(
            (
                f"burst of {burst['uploads']} uploads",
                f"{burst['files_per_second']:.1f} files/s",
                "",
                "",
            )
        )
    cost = results.get("cost_per_million_uploads")
    if cost:
        rows.append(("cost per million uploads", f"${cost['usd_total']:.2f}", "", ""))
        for item, usd in cost["usd"].items():
            rows.append((f"  {item}", f"${usd:.3f}", "", ""))
    return rows


def render(results: dict[str, Any]) -> str:
    """The results as an aligned text table."""
    header: Row = ("figure", "handler", "baseline", "ratio")
    rows = [header, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)
