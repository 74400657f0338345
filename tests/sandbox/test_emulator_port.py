"""The emulator takes back its port at once: a TIME-WAIT socket left by the last run is no
obstacle (SO_REUSEADDR), as `up --port N` right after Ctrl-C needs."""

from __future__ import annotations

import errno
import socket

import pytest

from sandbox.emulator import MotoServer


def test_a_port_left_in_time_wait_by_the_last_run_can_be_served_again() -> None:
    first = MotoServer(port=0)
    port = first.port
    first.start()
    # "Connection: close": the server closes first, so its side enters TIME-WAIT.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /moto-api/data.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while client.recv(65536):  # until the server's FIN
            pass
    first.stop()
    # Without SO_REUSEADDR the port is refused: the TIME-WAIT socket is really there.
    with socket.socket() as plain, pytest.raises(OSError, match="in use") as refused:
        plain.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE

    second = MotoServer(port=port)
    try:
        assert second.port == port
    finally:
        second.stop()
