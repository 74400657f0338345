"""A near-zero DynamoDB endpoint: every request gets an empty success at once.

The honest floor for warm cost: against it, what a handler spends per event is nearly all
its own client-side work (botocore, Powertools, our logic), as in AWS, where DynamoDB's
server time is not the function's CPU. HTTP/1.1 keep-alive, one send per response and
TCP_NODELAY, as botocore's connection pool expects of DynamoDB.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
# PutItem's answer when no return values are asked for, as DynamoDB sends it.
EMPTY_RESULT = b"{}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one send: no Nagle wait on the kept-alive connection.
    wbufsize = -1
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        # botocore checks DynamoDB bodies against this CRC.
        self.send_header("x-amz-crc32", str(zlib.crc32(EMPTY_RESULT)))
        self.send_header("Content-Length", str(len(EMPTY_RESULT)))
        self.end_headers()
        self.wfile.write(EMPTY_RESULT)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a log line per request would cost more than the answer."""


@contextmanager
def stub_dynamodb_endpoint() -> Iterator[str]:
    """A running stub on a free port of 127.0.0.1; yields its endpoint URL."""
    server = ThreadingHTTPServer((HOST, 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench-stub-dynamodb")
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
