"""The fault proxy's wire behaviour, pinned without timing: a response leaves in one send."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.faults import DYNAMODB_TARGET_PREFIX, FaultProxy, Faults


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    """A proxy that answers every DynamoDB request itself, so no upstream is needed."""
    proxy = FaultProxy("http://127.0.0.1:9", Faults(dynamodb_error_rate=1.0, seed=1))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy_sends(monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy) -> list[tuple[bytes, bool]]:
    """Every send the proxy makes on a client connection: (bytes, TCP_NODELAY set)."""
    port = int(proxy.url.rsplit(":", 1)[1])
    sends: list[tuple[bytes, bool]] = []
    lock = threading.Lock()

    def recording(original: Any) -> Any:
        def send(sock: socket.socket, data: Any, *args: Any) -> Any:
            if sock.getsockname()[1] == port:  # the proxy's side of the connection
                nodelay = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                with lock:
                    sends.append((bytes(data), nodelay))
            return original(sock, data, *args)

        return send

    monkeypatch.setattr(socket.socket, "send", recording(socket.socket.send))
    monkeypatch.setattr(socket.socket, "sendall", recording(socket.socket.sendall))
    return sends


def test_each_response_on_a_kept_alive_connection_leaves_in_one_send(
    proxy: FaultProxy, proxy_sends: list[tuple[bytes, bool]]
) -> None:
    # Headers and body sent apart make Nagle's algorithm hold the body until the client's
    # delayed ACK (about 40 ms a call); one send per response, with TCP_NODELAY, cannot.
    connection = http.client.HTTPConnection(proxy.url.removeprefix("http://"), timeout=10)
    for _ in range(3):  # the same connection, as botocore's pool reuses it
        connection.request(
            "POST", "/", body=b"{}", headers={"X-Amz-Target": f"{DYNAMODB_TARGET_PREFIX}PutItem"}
        )
        response = connection.getresponse()
        body = response.read()
        assert response.status in (400, 500)
        assert b"__type" in body
    connection.close()

    assert len(proxy_sends) == 3
    for data, nodelay in proxy_sends:
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 ")
        assert b"__type" in body
        assert nodelay
