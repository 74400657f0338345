"""argparse types for the sandbox's options: each refuses what the sandbox can't use.

A bad value is a usage error that names the value and the range it takes, for example
`argument --port: '99999' is not a port: give 1 to 65535, or 0 for a free one`. Output
files are checked here too, so a bad path fails before a run, not after it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import NoReturn

MAX_PORT = 65535
# A drill simulates every upload of its ~15 minutes: 10,000/min is ~150,000 invocations,
# well past any canary's alarm thresholds and still within the machine's memory.
MAX_UPLOADS_PER_MINUTE = 10_000


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (what is wrong, where to read more),
    exit status 2; without it argparse prints its whole usage block first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def share(text: str) -> float:
    """A share of requests or events: 0 to 1 (not nan)."""
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share: give a number from 0 to 1")
    return value


def seconds(text: str) -> float:
    """A delay in seconds: finite, 0 or more."""
    value = number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a delay: give seconds, 0 or more")
    return value


def uploads_per_minute(text: str) -> float:
    """Upload traffic: finite, more than 0, at most MAX_UPLOADS_PER_MINUTE."""
    value = number(text)
    if not (math.isfinite(value) and 0 < value <= MAX_UPLOADS_PER_MINUTE):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a traffic rate: give uploads per minute, "
            f"more than 0 and at most {MAX_UPLOADS_PER_MINUTE:,}"
        )
    return value


def output_file(text: str) -> Path:
    """A file to write at the end of a run: not a directory; its folder is made now if missing
    (as `mkdir -p`: `.sandbox/` does not exist before the first run), so a path that can't be
    written is refused before the run, not after it."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory: give a file name in it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r}: can't make the folder {str(path.parent)!r} ({error.strerror}): "
            "give a path in a folder you can write"
        ) from None
    return path


def port(text: str) -> int:
    """A TCP port on 127.0.0.1: 1 to 65535, or 0 for one the system picks."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: give 1 to {MAX_PORT}, or 0 for a free one"
        )
    return value


def number(text: str) -> float:
    """Any float (nan and inf included; the callers check the range)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
