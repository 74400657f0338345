"""Run a long build step so that it never looks hung: ``heartbeat.py LABEL -- CMD...``

Prints ``==> LABEL`` when CMD starts, ``... LABEL: still running (N s)`` every few seconds
while it runs, and ``<== LABEL: done in N s`` (or the exit status) at the end. CMD's own
output passes straight through; its exit status becomes ours. Standard library only, so
the Makefile can use it before the virtual environment has anything installed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

INTERVAL_SECONDS = 2.0  # a line at least this often: no step looks hung
USAGE = "usage: heartbeat.py LABEL -- COMMAND [ARGS...]"


def run(label: str, command: list[str], interval: float = INTERVAL_SECONDS) -> int:
    """Run ``command``, reporting on stderr; returns its exit status."""
    print(f"==> {label}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        process = subprocess.Popen(command)  # noqa: S603 -- the Makefile's own commands
    except OSError as error:
        print(f"<== {label}: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    with still_running(label, interval):
        try:
            status = process.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the command too; let it finish its own clean-up.
            status = process.wait()
    elapsed = time.monotonic() - started
    outcome = "done" if status == 0 else f"failed (exit status {status})"
    print(f"<== {label}: {outcome} in {elapsed:.1f} s", file=sys.stderr, flush=True)
    return status


@contextmanager
def still_running(label: str, interval: float = INTERVAL_SECONDS) -> Iterator[None]:
    """``... LABEL: still running (N s)`` on stderr every ``interval`` seconds while the
    block runs, from a thread of its own (the block may be one long call)."""
    started, done = time.monotonic(), threading.Event()

    def tick() -> None:
        while not done.wait(interval):
            elapsed = time.monotonic() - started
            print(f"... {label}: still running ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    ticker = threading.Thread(target=tick, name="heartbeat", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":  # LABEL, "--", COMMAND
        print(USAGE, file=sys.stderr)
        return 2
    return run(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
