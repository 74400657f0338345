"""dynalite (npm: a DynamoDB implementation in Node.js) on 127.0.0.1, with the ledger table.

A second emulator beside moto, several times faster per request: the warm-cost ratio
against each shows how much of it is the emulator's speed rather than the handler's.
Installed by `make install` (package.json); started on a free port for the section.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.emulator import create_bench_table
from bench.settings import REPO_ROOT

DYNALITE = REPO_ROOT / "node_modules" / ".bin" / "dynalite"
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
# dynalite takes a port number, not port 0: a probed free port can be taken by another
# process before dynalite binds it, so a failed start is retried on a new port.
START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dynalite exited with status {process.returncode} at start")
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"dynalite did not listen on {HOST}:{port} within {START_TIMEOUT_S} s")


def _start() -> tuple[subprocess.Popen[bytes], int]:
    for _ in range(START_ATTEMPTS):
        port = _free_port()
        process = subprocess.Popen(  # noqa: S603 -- the project's own pinned tool, no shell
            [str(DYNALITE), "--host", HOST, "--port", str(port), "--createTableMs", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(port, process)
        except RuntimeError:
            process.kill()
            process.wait()
            continue
        return process, port
    raise RuntimeError(f"bench: dynalite did not start in {START_ATTEMPTS} attempts")


@contextmanager
def dynalite_endpoint() -> Iterator[str]:
    """A running dynalite (in memory) with the ledger table; yields its endpoint URL."""
    if not DYNALITE.exists():
        raise RuntimeError(f"bench: {DYNALITE} is missing; run `make install` (package.json)")
    process, port = _start()
    try:
        endpoint = f"http://{HOST}:{port}"
        create_bench_table(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
