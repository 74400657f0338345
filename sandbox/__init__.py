"""The local sandbox: the whole upload -> ledger flow offline, in moto, from `cdk.out`.

`Sandbox` and `Faults` are imported on first use, not here: `python -m sandbox` must be
able to start (and say in one line that it runs outside the project's environment) before
moto and boto3 are imported.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.faults import Faults
    from sandbox.sandbox import Sandbox

__all__ = ["Faults", "Sandbox"]
_HOMES = {"Faults": "sandbox.faults", "Sandbox": "sandbox.sandbox"}


def environment_error_line(error: ImportError) -> str:
    """The one line for an import that failed because this Python isn't the project's
    (its moto, boto3... missing or of another version): how to run it instead."""
    return (
        f"python -m sandbox: can't import what the sandbox needs ({error}) with "
        f"{sys.executable}: run it with the project's environment: `make install`, then "
        "`source .venv/bin/activate` (or `.venv/bin/python -m sandbox ...`)"
    )


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
