"""The local sandbox: the whole upload -> ledger flow offline, in moto, from `cdk.out`."""

from sandbox.faults import Faults
from sandbox.sandbox import Sandbox

__all__ = ["Faults", "Sandbox"]
