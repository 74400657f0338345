"""A burst of uploads through the local sandbox, end to end: files per second.

The sandbox (S3 -> SQS -> local Lambda runtime -> the real handler -> DynamoDB) is
imported only here, so every other section runs without it. The burst runs twice: with
no faults, and with the fault flags on (DynamoDB errors, duplicates, shuffled order).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.settings import (
    BURST_CLIENT_THREADS,
    BURST_PEAK_MEMORY_TARGET_MIB,
    BURST_TARGET_PER_SECOND,
    BURST_WITH_FAULTS_TARGET_PER_SECOND,
    Sizes,
)

BODY = b"benchmark upload\n"
MEMORY_SAMPLE_INTERVAL_S = 0.1
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """``pid`` and its live descendants (Linux /proc: each thread lists the children it
    started). os.listdir and open, not pathlib: the memory sampler walks this ten times a
    second, in the process whose CPU the burst measures."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended between two looks
        found.append(current)
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    pending += [int(child) for child in children.read().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Linux /proc), in KiB."""
    total = 0
    for current in _descendants(pid):
        try:
            with open(f"/proc/{current}/statm", encoding="ascii") as statm:
                total += int(statm.read().split()[1]) * PAGE_KIB
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _process_cpu_s(pid: int | None) -> float:
    """CPU seconds used so far by one process (Linux /proc); 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _children_cpu_s(pid: int, other: int | None = None) -> float:
    """CPU seconds used so far by the live descendants of ``pid`` but ``other`` (Linux /proc)."""
    return sum(_process_cpu_s(child) for child in _descendants(pid) if child not in (pid, other))


@contextmanager
def _peak_memory() -> Iterator[dict[str, float]]:
    """Samples the process tree's resident memory while the block runs; peak in MiB, and
    the CPU seconds the sampling itself took (`cpu_s`: this process's, not the sandbox's)."""
    peak = {"mib": 0.0, "cpu_s": 0.0}
    if not Path("/proc/self/statm").exists():
        yield peak  # not Linux: no figure, and the report says so
        return
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            started = time.thread_time()
            peak["mib"] = max(peak["mib"], _tree_rss_kib(os.getpid()) / 1024)
            peak["cpu_s"] += time.thread_time() - started
            stop.wait(MEMORY_SAMPLE_INTERVAL_S)

    sampler = threading.Thread(target=sample, name="bench-memory", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def _run(cdk_out: Path, uploads: int, timeout_s: float, faulty: bool) -> dict[str, Any]:
    # Imported here only: it starts nothing, but the other sections need none of it.
    from sandbox import Faults, Sandbox  # noqa: PLC0415

    faults = (
        Faults(dynamodb_error_rate=0.1, duplicate_rate=0.2, shuffle=True, seed=7)
        if faulty
        else Faults()
    )
    keys = [f"burst/file {index:05d}.txt" for index in range(uploads)]
    with _peak_memory() as peak, Sandbox(cdk_out=cdk_out, faults=faults) as sandbox:
        # CPU, to say what caps the rate: this process (the fault proxy, the runtime, the
        # service metrics and the upload clients, under one GIL), the emulator's process
        # (moto) and the execution environments.
        emulator = sandbox.emulator_pid
        # The memory sampler's own CPU is the bench's, not the sandbox's: left out.
        cpu_started = time.process_time() - peak["cpu_s"]
        emulator_started = _process_cpu_s(emulator)
        environments_started = _children_cpu_s(os.getpid(), emulator)
        started = time.perf_counter()
        with ThreadPoolExecutor(BURST_CLIENT_THREADS, thread_name_prefix="bench-upload") as pool:
            list(pool.map(lambda key: sandbox.upload(key, BODY), keys))
        uploaded = time.perf_counter() - started
        sandbox.wait_until_idle(timeout=timeout_s)
        elapsed = time.perf_counter() - started
        process_ms = (time.process_time() - peak["cpu_s"] - cpu_started) * 1000 / uploads
        emulator_ms = (_process_cpu_s(emulator) - emulator_started) * 1000 / uploads
        environments_ms = (
            (_children_cpu_s(os.getpid(), emulator) - environments_started) * 1000 / uploads
        )
        recorded = {item["filename"] for item in sandbox.ledger()}
        stats = sandbox.stats()
    missing = [key for key in keys if key not in recorded]
    if missing:
        raise RuntimeError(f"burst: {len(missing)} of {len(keys)} uploads not in the ledger")
    return {
        "uploads": len(keys),
        "client_threads": BURST_CLIENT_THREADS,
        "seconds": elapsed,
        "upload_seconds": uploaded,
        "files_per_second": len(keys) / elapsed,
        "peak_memory_mib": peak["mib"],
        "cpu_ms_per_upload": {
            "sandbox_process": process_ms,
            "emulator_process": emulator_ms,
            "execution_environments": environments_ms,
        },
        # What the CPU alone allows: each process is held to one core by its GIL (the
        # busiest one caps the rate); all of it spread perfectly over the machine's cores
        # would allow the second figure.
        "cpu_cap_files_per_second": {
            "busiest_process_on_one_core": 1000 / max(process_ms, emulator_ms)
            if max(process_ms, emulator_ms)
            else None,
            "everything_on_all_cores": (os.cpu_count() or 1)
            * 1000
            / (process_ms + emulator_ms + environments_ms),
        },
        "invocations": stats["invocations"],
        "retries": stats["retries"],
    }


def measure_burst(sizes: Sizes, cdk_out: Path) -> dict[str, Any]:
    """Upload ``sizes.burst_uploads`` files from several threads; time until all are in
    the ledger, without faults and with them.

    The clock runs from the first upload until the sandbox is idle, so files per second
    is the whole path: S3 PUT, notification, queue, async invoke, handler, DynamoDB.
    Peak memory is the whole sandbox: this process (the proxy, the runtime, the clients),
    the emulator's and the execution environments it started. ``cdk_out`` must hold a
    synthesized app (`python -m bench` checks that before it measures anything).
    """
    clean = _run(cdk_out, sizes.burst_uploads, sizes.burst_timeout_s, faulty=False)
    faulty = _run(cdk_out, sizes.burst_uploads, sizes.burst_timeout_s, faulty=True)
    return {
        **clean,
        "target_files_per_second": BURST_TARGET_PER_SECOND,
        "target_peak_memory_mib": BURST_PEAK_MEMORY_TARGET_MIB,
        "with_faults": {**faulty, "target_files_per_second": BURST_WITH_FAULTS_TARGET_PER_SECOND},
    }
