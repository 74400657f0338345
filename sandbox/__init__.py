"""The local sandbox: the whole upload -> ledger flow offline, in moto, from `cdk.out`."""

import os

# Before config.constants imports aws_cdk: jsii's Node notice is noise for a sandbox user.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from sandbox.faults import Faults
from sandbox.sandbox import Sandbox

__all__ = ["Faults", "Sandbox"]
