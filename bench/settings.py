"""Benchmark sizes and the names the sections share. Tuned values live here, once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "bench-results" / "latest.json"
# Where `--quick` writes when no --output is given: a smoke run keeps latest.json intact.
QUICK_OUTPUT = REPO_ROOT / "bench-results" / "quick.json"
DEFAULT_CDK_OUT = REPO_ROOT / "cdk.out"

# The emulated ledger table and the fake account every section uses.
TABLE_NAME = "bench-ledger"
REGION = "eu-central-1"
BUCKET = "bench-uploads"
SERVICE_NAME = "upload-ledger-bench"
METRICS_NAMESPACE = "UploadLedgerBench"

REAL_HANDLER_MODULE = "handler.app"
BARE_HANDLER_MODULE = "bench.bare_handler"
UNDECORATED_HANDLER_MODULE = "bench.undecorated_handler"

# Records per event for the scaling section: cost per record should stay flat.
RECORDS_PER_EVENT = (1, 10, 100)
# The workers (handler traced and untraced, baseline, undecorated) take turns in batches
# of about this many records (see bench.warm).
RECORDS_PER_BATCH = 50
# The targets, printed next to the measured figures (never asserted by tests).
# What the handler adds to the bare baseline, in CPU, against the stub endpoint.
OVERHEAD_CPU_MS_TARGET = 0.15
OVERHEAD_US_PER_RECORD_TARGET = 20.0
COLD_RATIO_TARGET = 1.15
# The serialization floor (bench.serializer): rounds, and serializations of each request
# per round; enough that process_time's resolution is lost in the sum.
SERIALIZER_REPEATS = 7
SERIALIZER_CALLS = 2000
# The sandbox, end to end: uploads per second from BURST_CLIENT_THREADS threads until every
# key is in the ledger; with the fault flags on; peak memory of the whole sandbox.
BURST_TARGET_PER_SECOND = 200.0
BURST_WITH_FAULTS_TARGET_PER_SECOND = 100.0
BURST_PEAK_MEMORY_TARGET_MIB = 1024.0
BURST_CLIENT_THREADS = 8


@dataclass(frozen=True)
class Sizes:
    """How much work each section does; `--quick` shrinks everything to a smoke run."""

    warm_records: int  # records timed per handler and per event size
    # ... but at least this many events per size: ten 100-record events gave a per-extra-
    # record figure that moved between 17 and 48 us from run to run (medians of ten).
    warm_min_events: int
    warmup_events: int  # untimed events per handler and event size
    cold_repeats: int
    synth_repeats: int
    burst_uploads: int
    burst_timeout_s: float


FULL = Sizes(
    warm_records=1000,
    warm_min_events=40,
    warmup_events=20,
    cold_repeats=15,
    synth_repeats=3,
    burst_uploads=1000,
    burst_timeout_s=600.0,
)
# A smoke run (the bench's test): one batch per event size, one sample of everything.
QUICK = Sizes(
    warm_records=1,
    warm_min_events=1,
    warmup_events=1,
    cold_repeats=1,
    synth_repeats=1,
    burst_uploads=20,
    burst_timeout_s=120.0,
)
