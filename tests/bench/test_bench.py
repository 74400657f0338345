"""`python -m bench --quick` runs every section and writes the JSON it promises.

No timing is asserted: only that each figure exists and is a sane number.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.report import render

REPO_ROOT = Path(__file__).resolve().parents[2]


def is_sane(value: Any) -> bool:
    """A finite, positive number: what every measured figure must be."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, cdk_out: Path) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    # The burst runs the sandbox from a synthesized app: the session's, not the work tree's.
    # The synth section runs in test_bench_synth.py, on another worker meanwhile.
    command = [
        *(sys.executable, "-m", "bench", "--quick", "--skip-synth"),
        *("--output", str(output), "--cdk-out", str(cdk_out)),
    ]
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and module, no shell
        command,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "cold start" in completed.stdout  # the table was printed
    loaded: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return loaded


def test_warm_cost_is_measured_for_each_event_size_next_to_the_baseline(
    results: dict[str, Any],
) -> None:
    warm = results["warm"]
    assert set(warm["by_records_per_event"]) == {"1", "10", "100"}
    for row in warm["by_records_per_event"].values():
        for name in ("handler", "handler_untraced", "baseline", "undecorated"):
            assert row[name]["events"] >= 1
            assert is_sane(row[name]["median_ms_per_event"])
            assert is_sane(row[name]["median_ms_per_record"])
            assert is_sane(row[name]["median_cpu_ms_per_event"])
        for ratio in ("ratio", "untraced_ratio", "logic_ratio", "observability_ratio"):
            assert is_sane(row[ratio])
    one = warm["by_records_per_event"]["1"]
    assert (warm["ratio"], warm["untraced_ratio"]) == (one["ratio"], one["untraced_ratio"])
    assert is_sane(warm["per_record_growth"])


def test_handler_overhead_is_cpu_over_the_baseline_per_event_and_per_extra_record(
    results: dict[str, Any],
) -> None:
    overhead = results["warm"]["overhead"]
    rows = results["warm"]["by_records_per_event"]

    def extra(name: str, records: str) -> float:
        row = rows[records]
        handler, baseline = row[name], row["baseline"]
        return float(handler["median_cpu_ms_per_event"] - baseline["median_cpu_ms_per_event"])

    # A difference may be negative on a noisy machine; it must be this difference. The
    # headline is the untraced handler's (most invocations); traced_... the sampled one's.
    for prefix, name in (("", "handler_untraced"), ("traced_", "handler")):
        assert math.isclose(overhead[f"{prefix}cpu_ms_per_event"], extra(name, "1"))
        assert math.isclose(
            overhead[f"{prefix}cpu_us_per_extra_record"],
            (extra(name, "100") - extra(name, "1")) / 99e-3,
        )
    assert overhead["target_cpu_ms_per_event"] == 0.15
    assert overhead["target_cpu_us_per_extra_record"] == 20


def test_the_overhead_is_shown_untraced_and_traced_next_to_its_targets(
    results: dict[str, Any],
) -> None:
    table = render(results)
    for figure, target in (
        ("untraced 1-record event", "target <= 0.15 ms"),
        ("traced 1-record event", "target <= 0.15 ms"),
        ("untraced, per extra record", "target <= 20 us"),
        ("traced, per extra record", "target <= 20 us"),
    ):
        [line] = [line for line in table.splitlines() if f"baseline, {figure}" in line]
        assert target in line
        assert "met" in line or "MISSED" in line


def test_the_untraced_handler_really_ran_unsampled(results: dict[str, Any]) -> None:
    # A sampled invocation puts its trace id on its EMF line (handler/app.py); an
    # unsampled one has none to give, so the untraced worker logs fewer bytes per event.
    one_record = results["warm"]["by_records_per_event"]["1"]
    untraced, traced = one_record["handler_untraced"], one_record["handler"]
    assert untraced["log_bytes_per_event"] < traced["log_bytes_per_event"]


def test_botocore_serialization_floor_is_measured_and_shown(results: dict[str, Any]) -> None:
    floor = results["warm"]["overhead"]["botocore_serialization_us_per_record"]
    # The handler's PutItem carries more than the bare one's key: serializing it costs more.
    assert is_sane(floor)
    [line] = [line for line in render(results).splitlines() if "floor: botocore" in line]
    assert f"{floor:.1f} us/record" in line


def test_the_ratio_is_also_measured_against_moto_and_dynalite(results: dict[str, Any]) -> None:
    by_emulator = results["warm_by_emulator"]
    assert set(by_emulator) == {"moto", "dynalite"}
    for warm in by_emulator.values():
        assert set(warm["by_records_per_event"]) == {"1"}
        assert is_sane(warm["ratio"])


def test_handler_logs_are_counted_for_the_cost_estimate(results: dict[str, Any]) -> None:
    one_record = results["warm"]["by_records_per_event"]["1"]
    assert is_sane(one_record["handler"]["log_bytes_per_event"])


def test_cold_start_is_compared_with_the_baseline_and_split_by_import(
    results: dict[str, Any],
) -> None:
    cold = results["cold_start"]
    for key in ("handler_ms", "baseline_ms", "ratio"):
        assert is_sane(cold[key])
    shares = cold["import_shares_ms"]
    assert is_sane(shares["boto3"])
    assert is_sane(shares["handler.app (total)"])


def test_a_section_left_out_says_so(results: dict[str, Any]) -> None:
    assert results["synth"] == {"skipped": "--skip-synth"}


def test_burst_reports_files_per_second_end_to_end_with_and_without_faults(
    results: dict[str, Any],
) -> None:
    burst = results["burst"]
    for run in (burst, burst["with_faults"]):
        assert run["uploads"] >= 1
        assert run["client_threads"] == 8
        assert is_sane(run["files_per_second"])
        assert is_sane(run["target_files_per_second"])
        assert is_sane(run["peak_memory_mib"])
    # The table shows the peak of each run next to the target: faults start more environments.
    memory_rows = [line for line in render(results).splitlines() if "peak memory" in line]
    assert [("faults on" in row, "1024 MiB" in row) for row in memory_rows] == [
        (False, True),
        (True, True),
    ]
    # Every upload reached the function at least once (duplicates and retries add more).
    assert burst["with_faults"]["invocations"] >= burst["with_faults"]["uploads"]
    # moto runs in a process of its own: both processes do work for every upload.
    assert is_sane(burst["cpu_ms_per_upload"]["sandbox_process"])
    assert is_sane(burst["cpu_ms_per_upload"]["emulator_process"])
    assert is_sane(burst["cpu_cap_files_per_second"]["busiest_process_on_one_core"])
    assert is_sane(burst["cpu_cap_files_per_second"]["everything_on_all_cores"])
    assert burst["target_peak_memory_mib"] == 1024


def test_cost_estimate_itemises_dollars_and_names_its_prices(results: dict[str, Any]) -> None:
    cost = results["cost_per_million_uploads"]
    assert cost["uploads"] == 1_000_000
    assert set(cost["usd"]) == {
        "lambda_duration",
        "lambda_requests",
        "dynamodb_writes",
        "s3_puts",
        "cloudwatch_logs",
        "xray_traces",
    }
    assert all(is_sane(usd) for usd in cost["usd"].values())
    assert math.isclose(cost["usd_total"], sum(cost["usd"].values()))
    assert cost["assumptions"]["prices_region"]
    assert all(is_sane(price) for price in cost["assumptions"]["prices"].values())


def test_the_machines_load_is_kept_and_shown_with_the_figures(results: dict[str, Any]) -> None:
    # A figure from a loaded machine is not comparable with a quiet one's: say which it is.
    meta = results["meta"]
    for moment in ("start", "end"):
        load = meta[f"load_average_at_{moment}"]
        assert len(load) == 3
        assert all(value >= 0 for value in load)
    [line] = [line for line in render(results).splitlines() if line.startswith("machine load")]
    assert f": {meta['load_average_at_start'][0]:.1f} on " in line


@pytest.mark.parametrize(("load", "busy"), [(0.0, False), (0.4, False), (0.5, True), (3.0, True)])
def test_the_load_line_calls_a_run_busy_only_when_other_work_was_running(
    load: float, busy: bool
) -> None:
    [line] = [
        line
        for line in render(
            {"meta": {"load_average_at_start": [load, 0, 0], "cpu_count": 2}}
        ).splitlines()
        if line.startswith("machine load")
    ]
    assert f": {load:.1f} on 2 cores" in line
    assert ("every figure is inflated" in line) is busy
    assert line.endswith("(quiet)") is not busy


def test_a_skipped_section_is_a_row_saying_so_not_a_figure() -> None:
    rows = render({"synth": {"skipped": "--skip-synth"}, "burst": {"skipped": "--skip-burst"}})
    assert "skipped: --skip-synth" in rows
    assert "skipped: --skip-burst" in rows
