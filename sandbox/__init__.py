"""The local sandbox: the whole upload -> ledger flow offline, in moto, from `cdk.out`.

`Sandbox` and `Faults` are imported on first use, not here: `python -m sandbox` must be
able to start (and say in one line that it runs outside the project's environment) before
moto and boto3 are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.faults import Faults
    from sandbox.sandbox import Sandbox

__all__ = ["Faults", "Sandbox"]
_HOMES = {"Faults": "sandbox.faults", "Sandbox": "sandbox.sandbox"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
