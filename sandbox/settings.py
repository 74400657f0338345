"""Sandbox tuning: how the local emulation of AWS behaves (moto on 127.0.0.1).

Plain values, no dependencies. What the sandbox shares with the service (table key,
entry points, environment variable names) comes from `contract.py` instead.
"""

from __future__ import annotations

SANDBOX_STATE_DIR = ".sandbox"
SANDBOX_STATE_FILE = "state.json"
SANDBOX_HOST = "127.0.0.1"
# moto's own fake credentials and account: nothing here can reach a real account.
SANDBOX_ACCESS_KEY = "testing"
SANDBOX_SECRET_KEY = "testing"  # noqa: S105 - moto accepts any secret; this is not one
SANDBOX_ACCOUNT_ID = "123456789012"
SANDBOX_FALLBACK_REGION = "eu-central-1"
# Lambda retries an async event after about 1 then 2 minutes; locally seconds are enough
# to show the behaviour (the delay doubles per attempt, as in AWS).
SANDBOX_RETRY_DELAY_SECONDS = 1.0
# Execution environments the local runtime keeps warm: Lambda runs async events concurrently.
SANDBOX_CONCURRENCY = 2
# More environments, up to this many, while invocations wait (no CPU) and events are due.
# An invocation counts as waiting once it has run SANDBOX_SCALE_OUT_AFTER_SECONDS and its
# environment is asleep (state S in /proc/<pid>/stat: the SDK's backoff after a throttle,
# up to 1 s doubling, or a call that waits on the network). An environment that is busy or
# only starved of CPU on a loaded machine is runnable (R), not waiting: more environments
# would only add cold starts. Where /proc can't tell, wall time alone decides, after
# SANDBOX_SCALE_OUT_BLIND_AFTER_SECONDS (clean invocations stayed under 0.4 s on a loaded
# machine). 10 environments keep the fault burst's peak memory under 1 GiB (`make bench`).
SANDBOX_MAX_CONCURRENCY = 10
SANDBOX_SCALE_OUT_AFTER_SECONDS = 0.1
SANDBOX_SCALE_OUT_BLIND_AFTER_SECONDS = 0.5
# Transport-queue polling: short polls so Ctrl-C and close() return at once.
SANDBOX_POLL_INTERVAL_SECONDS = 0.05
# Out-of-order delivery: each event waits a random time up to this before its invocation.
SANDBOX_SHUFFLE_WINDOW_SECONDS = 0.5
SANDBOX_TRANSPORT_QUEUE = "sandbox-s3-events"
