"""The operations console: the stage's dashboard from `cdk.out`, drawn over the sandbox's
metrics, with its alarms, notifications and ledger (served live, or as one HTML file)."""

from sandbox.console.console import ConsoleServer, ConsoleSources, write_snapshot

__all__ = ["ConsoleServer", "ConsoleSources", "write_snapshot"]
