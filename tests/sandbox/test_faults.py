"""The fault proxy's wire behaviour, pinned without timing: a response leaves in one send."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _CountingUpstream(BaseHTTPRequestHandler):
    """An upstream that counts connections and requests; `closes` drops each connection
    after its response without saying so, as an emulator may close an idle one."""

    protocol_version = "HTTP/1.1"
    closes = False
    connections = 0
    requests = 0

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = self.closes

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.mark.parametrize("upstream_closes", [False, True])
def test_forwarded_requests_reuse_one_upstream_connection_and_survive_its_closing(
    upstream_closes: bool,
) -> None:
    class Upstream(_CountingUpstream):
        closes = upstream_closes

    handler = Upstream
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", Faults())
    proxy.start()
    try:
        connection = http.client.HTTPConnection(proxy.url.removeprefix("http://"), timeout=10)
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "S3.Put"})
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"{}")
        connection.close()
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()

    assert handler.requests == 3
    # Kept alive, one connection carries them all; closed by the upstream, each is retried
    # once on a fresh connection and still answered.
    assert handler.connections == (3 if upstream_closes else 1)
