"""The printed table: one line per figure, its baseline, the ratio or target next to it, and
where the cost lives: in AWS too, or only in the emulator."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str]
# Where a figure's cost lives, for the last column.
IN_AWS = "AWS too"
EMULATOR = "emulator"


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def _verdict(measured: float, target: float, lower_is_better: bool = True) -> str:
    met = measured <= target if lower_is_better else measured >= target
    return "met" if met else "MISSED"


def _ms_and_cpu(figures: dict[str, Any]) -> str:
    return f"{_ms(figures['median_ms_per_event'])}, CPU {_ms(figures['median_cpu_ms_per_event'])}"


def _warm_rows(warm: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for records, row in warm["by_records_per_event"].items():
        rows.append(
            (
                f"warm vs stub, {records} record(s)/event, traced",
                _ms_and_cpu(row["handler"]),
                _ms_and_cpu(row["baseline"]),
                f"{row['ratio']:.2f}x",
                IN_AWS,
            )
        )
        # Same baseline, same batches: most invocations at volume are not sampled.
        rows.append(
            (
                "  untraced",
                _ms_and_cpu(row["handler_untraced"]),
                "",
                f"{row['untraced_ratio']:.2f}x",
                IN_AWS,
            )
        )
        rows.append(
            (
                "  split (traced): logic+conditional put, observability",
                f"{row['logic_ratio']:.2f}x, {row['observability_ratio']:.2f}x",
                _ms(row["undecorated"]["median_ms_per_event"]) + " undecorated",
                "",
                "",
            )
        )
    over = warm.get("overhead")
    if over:
        rows += _overhead_rows(over)
    if "per_record_growth" in warm:
        rows.append(
            (
                "per-record cost, 100 vs 1 record/event",
                f"{warm['per_record_growth']:.2f}x",
                f"{warm['baseline_per_record_growth']:.2f}x",
                "flat (1.0) or falling",
                IN_AWS,
            )
        )
    sizes = warm["by_records_per_event"]
    rows.append(
        (
            f"logs per event, {' / '.join(sizes)} record(s)",
            " / ".join(
                f"{row['handler']['log_bytes_per_event'] / 1024:.1f} KB" for row in sizes.values()
            ),
            "",
            "(CloudWatch Logs bills the bytes)",
            IN_AWS,
        )
    )
    return rows


def _overhead_rows(over: dict[str, Any]) -> list[Row]:
    """The handler's CPU over the baseline's, untraced (the headline) then traced, each
    next to its target; then the per-record floor that botocore's serialization sets."""
    cases = (("untraced", ""), ("traced", "traced_"))  # the case, its keys' prefix
    ms_target, us_target = over["target_cpu_ms_per_event"], over["target_cpu_us_per_extra_record"]
    figures = [
        (f"{case} 1-record event", over[f"{prefix}cpu_ms_per_event"], ms_target, "ms", ".3f")
        for case, prefix in cases
    ] + [
        (
            f"{case}, per extra record",
            over[f"{prefix}cpu_us_per_extra_record"],
            us_target,
            "us",
            ".1f",
        )
        for case, prefix in cases
    ]
    rows: list[Row] = [
        (
            f"handler CPU over baseline, {label}",
            f"{measured:{spec}} {unit}",
            "",
            f"target <= {target:g} {unit}: " + _verdict(measured, target),
            IN_AWS,
        )
        for label, measured, target, unit, spec in figures
    ]
    rows.append(
        (
            # botocore's serialization of the contract's request over the bare one's: the
            # per-extra-record figures cannot fall below it while the handler uses botocore.
            "  floor: botocore serializing the handler's PutItem",
            f"{over['botocore_serialization_us_per_record']:.1f} us/record",
            "over the bare PutItem",
            "no target (per-record floor on botocore)",
            IN_AWS,
        )
    )
    return rows


def _emulator_rows(by_emulator: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, warm in by_emulator.items():
        row = warm["by_records_per_event"]["1"]
        rows.append(
            (
                f"warm vs {name}, 1 record/event, traced / untraced",
                f"{_ms(row['handler']['median_ms_per_event'])} / "
                f"{_ms(row['handler_untraced']['median_ms_per_event'])}",
                _ms(row["baseline"]["median_ms_per_event"]),
                f"{row['ratio']:.2f}x / {row['untraced_ratio']:.2f}x "
                "(the emulator's time is in both)",
                EMULATOR,
            )
        )
    return rows


def _cold_rows(cold: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        (
            "cold start (import + client)",
            _ms(cold["handler_ms"]),
            _ms(cold["baseline_ms"]),
            f"{cold['ratio']:.2f}x, target <= {cold['target_ratio']}: "
            + _verdict(cold["ratio"], cold["target_ratio"]),
            IN_AWS,
        )
    ]
    for name, share in cold["import_shares_ms"].items():
        rows.append((f"  import {name}", _ms(share), "", "", ""))
    return rows


def _burst_rows(burst: dict[str, Any]) -> list[Row]:
    if "skipped" in burst:
        return [("burst through the sandbox", f"skipped: {burst['skipped']}", "", "", "")]
    if "failed" in burst:
        return [("burst through the sandbox", "failed (see the error below)", "", "", "")]
    rows: list[Row] = []
    for label, run in (("", burst), (", faults on", burst["with_faults"])):
        rows.append(
            (
                f"sandbox: {run['uploads']} uploads, {run['client_threads']} threads{label}",
                f"{run['files_per_second']:.1f} files/s",
                f"{run['seconds']:.1f} s",
                f"target >= {run['target_files_per_second']:.0f}/s: "
                + _verdict(run["files_per_second"], run["target_files_per_second"], False),
                EMULATOR,
            )
        )
    cpu, cap = burst["cpu_ms_per_upload"], burst["cpu_cap_files_per_second"]
    rows.append(
        (
            "  CPU per upload: sandbox process, emulator (moto), environments",
            f"{cpu['sandbox_process']:.1f} ms, {cpu['emulator_process']:.1f} ms, "
            f"{cpu['execution_environments']:.1f} ms",
            "",
            f"caps: {cap['busiest_process_on_one_core'] or 0:.0f}/s (busiest process), "
            f"{cap['everything_on_all_cores']:.0f}/s (all cores)",
            EMULATOR,
        )
    )
    target_mib = burst["target_peak_memory_mib"]
    for label, run in (("", burst), (", faults on", burst["with_faults"])):
        # Summed resident sets: pages the processes share count once per process, so
        # this is an upper bound of what the sandbox holds.
        rows.append(
            (
                f"sandbox: peak memory (all processes, summed RSS){label}",
                f"{run['peak_memory_mib']:.0f} MiB",
                "",
                f"target <= {target_mib:.0f} MiB: " + _verdict(run["peak_memory_mib"], target_mib),
                EMULATOR,
            )
        )
    return rows


def _rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "warm" in results:
        rows += _warm_rows(results["warm"])
    rows += _emulator_rows(results.get("warm_by_emulator", {}))
    if results.get("cold_start"):
        rows += _cold_rows(results["cold_start"])
    synth = results.get("synth")
    if synth and "skipped" in synth:
        rows.append(("synth (whole app vs one stack)", f"skipped: {synth['skipped']}", "", "", ""))
    elif synth:
        rows.append(
            (
                "synth (whole app vs one stack)",
                _ms(synth["app_ms"]),
                _ms(synth["minimal_app_ms"]),
                f"{synth['ratio']:.2f}x",
                "build machine",
            )
        )
    if results.get("burst"):
        rows += _burst_rows(results["burst"])
    cost = results.get("cost_per_million_uploads")
    if cost:
        rows.append(("cost per million uploads", f"${cost['usd_total']:.2f}", "", "", IN_AWS))
        for item, usd in cost["usd"].items():
            rows.append((f"  {item}", f"${usd:.3f}", "", "", ""))
    return rows


def render(results: dict[str, Any]) -> str:
    """The results as an aligned text table."""
    header: Row = ("figure", "handler / measured", "baseline", "ratio / target", "cost lives in")
    rows = [header, *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*(line.rstrip() for line in lines), *_load_lines(results.get("meta", {}))])


# A 1-minute load average at or above this before the run: other work was running.
BUSY_LOAD = 0.5


def _load_lines(meta: dict[str, Any]) -> list[str]:
    """The machine's load as the run began; at or above BUSY_LOAD other work (a build, a
    test run) was sharing the CPU and every figure is inflated. The load at the end is in
    the JSON only: the bench's own work raises it."""
    if "load_average_at_start" not in meta:
        return []
    load = meta["load_average_at_start"][0]
    verdict = (
        "other work was sharing the CPU: every figure is inflated" if load >= BUSY_LOAD else "quiet"
    )
    return [
        "",
        f"machine load as the run began (1-minute average): {load:.1f} on "
        f"{meta.get('cpu_count', '?')} cores ({verdict})",
    ]
