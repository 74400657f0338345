"""argparse types for the sandbox's options: each refuses what the sandbox can't use.

A bad value is a usage error that names the value and the range it takes, for example
`argument --port: '99999' is not a port: give 1 to 65535, or 0 for a free one`.
"""

from __future__ import annotations

import argparse
import math

MAX_PORT = 65535


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
