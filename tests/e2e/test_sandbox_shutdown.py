"""The sandbox leaves nothing behind: no threads, no child processes, no open port."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from sandbox import Sandbox

pytestmark = pytest.mark.e2e


class BodyFailedError(Exception):
    """Stands for a failing test inside `with Sandbox(...)`."""


def child_pids() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def use_then_fail(cdk_out: Path, ports: list[int]) -> None:
    with Sandbox(cdk_out, retry_delay_seconds=0.05) as sb:
        ports.append(int(sb.endpoint_url.rsplit(":", 1)[1]))
        sb.upload("shutdown check.txt", b"x")
        sb.wait_until_idle(timeout=30)  # the runtime's workers are running now
        assert port_is_open(ports[0])
        raise BodyFailedError


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_close_leaves_no_threads_processes_or_port_even_when_the_body_raises(
    cdk_out: Path,
) -> None:
    threads_before, children_before = set(threading.enumerate()), child_pids()
    ports: list[int] = []

    with pytest.raises(BodyFailedError):
        use_then_fail(cdk_out, ports)

    (port,) = ports
    assert set(threading.enumerate()) - threads_before == set()
    assert child_pids() - children_before == set()
    assert not port_is_open(port)
    # And the next sandbox in this process starts: the first released everything.
    with Sandbox(cdk_out) as again:
        assert again.ledger() == []
