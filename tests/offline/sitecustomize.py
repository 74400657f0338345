"""Loaded by every Python process of a command under test (PYTHONPATH points here): records
each outbound socket connection and name lookup in CONNECTION_AUDIT_LOG, one JSON object per
line, through Python's audit hooks (PEP 578), and refuses the ones that leave the machine."""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

LOG = os.environ["CONNECTION_AUDIT_LOG"]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _record(kind: str, target: str) -> None:
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(
            json.dumps({"runtime": "python", "pid": os.getpid(), "kind": kind, "target": target})
            + "\n"
        )


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        host = str(address[0])
        _record("connect", f"{host}:{address[1]}")
        if host not in LOOPBACK:
            raise ConnectionRefusedError(f"connection audit: refused {host}")
    elif event == "socket.getaddrinfo":
        _record("lookup", str(args[0]))


sys.addaudithook(_audit)
_record("loaded", " ".join(sys.argv[:1]))
