"""Fault injection: what can go wrong in AWS, switched on by options, reproducible by seed.

- DynamoDB errors at the wire: the function talks to the emulator through
  :class:`FaultProxy`, which answers a share of DynamoDB requests itself with the
  errors DynamoDB sends (400 throttling, 500 internal error), so boto3's own retries
  and then the handler's failure path run exactly as they would in AWS.
- Duplicate deliveries and out-of-order arrival are applied by the runtime (see
  :mod:`sandbox.runtime`), which reads the same :class:`Faults`.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sandbox import settings
from sandbox.service_metrics import DynamoDBCall
from sandbox.serving import BackgroundServer, notify

DYNAMODB_TARGET_PREFIX = "DynamoDB_20120810."
# botocore numbers each attempt of a call in this header (attempt=1 is the first send).
SDK_ATTEMPT = re.compile(r"attempt=(\d+)")
# Proxies must not forward these (RFC 9110 section 7.6.1); we re-frame every body.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


@dataclass(frozen=True)
class Faults:
    """Which faults to inject. All off by default; change them at run time with set_faults.

    dynamodb_error_rate: share of DynamoDB requests answered with a throttling (400
        ProvisionedThroughputExceededException) or internal (500 InternalServerError)
        error; the SDK retries these, as it does in AWS.
    duplicate_rate: share of events delivered twice (S3 and Lambda are at-least-once).
    shuffle: events reach the function out of order (each waits a random time first).
    seed: seeds every random choice, so a run can be repeated.
    dynamodb_access_denied: every DynamoDB request fails with AccessDeniedException, as
        after a deployment that broke the function's permissions. The SDK doesn't retry
        it, so events go through Lambda's retries to the failure queue at once; switch it
        off and `redrive` to recover them.
    """

    dynamodb_error_rate: float = 0.0
    duplicate_rate: float = 0.0
    shuffle: bool = False
    seed: int = 0
    dynamodb_access_denied: bool = False

    def __post_init__(self) -> None:
        for name in ("dynamodb_error_rate", "duplicate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # False for nan as well
                raise ValueError(f"Faults.{name} must be between 0 and 1, not {value!r}")

    def describe(self) -> str:
        """The active faults in one phrase ("none" when off), for banners and messages."""
        active = [
            f"{name.replace('_', '-')} {value}"
            for name, value in (
                ("dynamodb_error_rate", self.dynamodb_error_rate),
                ("duplicate_rate", self.duplicate_rate),
            )
            if value
        ]
        active += ["shuffle"] * self.shuffle
        active += ["dynamodb-access-denied"] * self.dynamodb_access_denied
        if not active:
            return "none"
        return ", ".join(active) + f" (seed {self.seed})"

    @property
    def active(self) -> bool:
        return self.describe() != "none"


# (status, __type, message) as DynamoDB sends them.
THROTTLED = (
    400,
    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
)
INTERNAL = (500, "com.amazon.coral.service#InternalServerError", "Internal server error")
ACCESS_DENIED = (
    400,
    "com.amazon.coral.service#AccessDeniedException",
    "User is not authorized to perform: dynamodb:PutItem (injected by the sandbox)",
)


class FaultProxy(BackgroundServer):
    """An HTTP proxy on 127.0.0.1 in front of the emulator that fails DynamoDB requests."""

    def __init__(self, upstream_url: str, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {"throttled": 0, "internal": 0, "access_denied": 0}
        self.forwarded = 0
        # Called with every DynamoDB call, injected errors included (sandbox.service_metrics).
        self.observers: list[Callable[[DynamoDBCall], None]] = []
        self.sdk_retries = 0  # requests the SDK sent again after an error (all services)
        self._upstream = urlsplit(upstream_url)
        server = ThreadingHTTPServer((settings.SANDBOX_HOST, 0), self._handler_class())
        server.daemon_threads = True
        super().__init__(server, "sandbox-fault-proxy")

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._random = random.Random(faults.seed)

    def count_attempt(self, sdk_request: str) -> None:
        """Count the SDK's retries from its `amz-sdk-request: attempt=N; max=M` header."""
        attempt = SDK_ATTEMPT.search(sdk_request)
        if attempt is not None and int(attempt.group(1)) > 1:
            with self._lock:
                self.sdk_retries += 1

    def choose_error(self, target: str) -> tuple[int, str, str] | None:
        """The error to answer a request with, or None to forward it."""
        if not target.startswith(DYNAMODB_TARGET_PREFIX):
            return None
        with self._lock:
            if self.faults.dynamodb_access_denied:
                self.injected["access_denied"] += 1
                return ACCESS_DENIED
            if self._random.random() >= self.faults.dynamodb_error_rate:
                self.forwarded += 1
                return None
            error = THROTTLED if self._random.random() < 0.5 else INTERNAL
            self.injected["throttled" if error is THROTTLED else "internal"] += 1
            return error

    def observe(
        self, target: str, request: bytes, status: int, response: bytes, seconds: float
    ) -> None:
        """Tell the observers of one DynamoDB call (service metrics count them as DynamoDB)."""
        if not self.observers or not target.startswith(DYNAMODB_TARGET_PREFIX):
            return
        answer = _json_object(response)
        error_type = str(answer.get("__type", "")).rsplit("#", 1)[-1] if status >= 300 else ""
        call = DynamoDBCall(
            operation=target.removeprefix(DYNAMODB_TARGET_PREFIX),
            request=_json_object(request),
            status=status,
            error_type=error_type,
            latency_ms=seconds * 1000,
            response=answer,
        )
        notify(self.observers, call, "a DynamoDB call")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        upstream = self._upstream

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the SDK's connection pool
            # On a kept-alive connection, a response written as two small sends (headers,
            # then body) meets Nagle's algorithm: the body waits for the client's delayed
            # ACK of the headers, about 40 ms per call. So buffer the response (the base
            # class flushes it after each request: one send), and set TCP_NODELAY for
            # bodies larger than the buffer.
            wbufsize = -1
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the function's own logs say what happened."""

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.count_attempt(self.headers.get("amz-sdk-request", ""))
                target = self.headers.get("X-Amz-Target", "")
                started = time.perf_counter()
                error = proxy.choose_error(target)
                if error is not None:
                    status, payload = error[0], self._answer_error(*error)
                else:
                    status, payload = self._forward(body)
                proxy.observe(target, body, status, payload, time.perf_counter() - started)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

            def _answer_error(self, status: int, error_type: str, message: str) -> bytes:
                payload = json.dumps({"__type": error_type, "message": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                # botocore checks DynamoDB bodies against this CRC, as AWS sends it.
                self.send_header("x-amz-crc32", str(zlib.crc32(payload)))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return payload

            def setup(self) -> None:
                super().setup()
                # One upstream connection per client connection, kept alive like the
                # client's own: a new one per request would cost the emulator a thread.
                self._upstream: http.client.HTTPConnection | None = None

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    if self._upstream is not None:
                        self._upstream.close()

            def _forward(self, body: bytes) -> tuple[int, bytes]:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection, self._upstream = self._upstream, None
                response, payload, self._upstream = _send_upstream(
                    connection, self._connect, self.command, self.path, body, headers
                )
                _answer_with(self, response, payload)
                return response.status, payload

            def _connect(self) -> http.client.HTTPConnection:
                host = upstream.hostname or settings.SANDBOX_HOST
                return http.client.HTTPConnection(host, upstream.port, timeout=60)

        return Handler


def _json_object(payload: bytes) -> dict[str, Any]:
    """A DynamoDB JSON body as a dict ({} when empty or not an object)."""
    try:
        value = json.loads(payload or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _answer_with(
    handler: BaseHTTPRequestHandler, response: http.client.HTTPResponse, payload: bytes
) -> None:
    """Relay the upstream's answer to the client, re-framed (our own Content-Length)."""
    handler.send_response(response.status, response.reason)
    for key, value in response.getheaders():
        # send_response wrote our own Server and Date already.
        if key.lower() not in HOP_BY_HOP | {"server", "date"}:
            handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


def _send_upstream(  # noqa: PLR0917 - one request's parts, as http.client takes them
    kept: http.client.HTTPConnection | None,
    connect: Callable[[], http.client.HTTPConnection],
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> tuple[http.client.HTTPResponse, bytes, http.client.HTTPConnection | None]:
    """The request upstream on the kept-alive connection, or on a new one."""
    if kept is None:
        return _exchange(connect(), method, path, body, headers)
    try:
        return _exchange(kept, method, path, body, headers)
    except (http.client.RemoteDisconnected, ConnectionError):
        # The emulator had closed the idle connection (urllib3 retries this too).
        return _exchange(connect(), method, path, body, headers)


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> tuple[http.client.HTTPResponse, bytes, http.client.HTTPConnection | None]:
    """One request upstream: (response, its body, the connection if it can be reused)."""
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    except BaseException:
        connection.close()
        raise
    if response.will_close:
        connection.close()
        return response, payload, None
    return response, payload, connection
