"""The AWS emulator: moto's server app on 127.0.0.1, in a thread we can stop and close.

The listening socket is bound here, before the server starts: a taken port is an OSError
the caller reports (werkzeug would print and call `sys.exit`), the port is known as soon
as the constructor returns (no pick-then-rebind race with another process), and `stop()`
closes it.

Some of moto's per-request costs are taken out here (see `_Dispatcher`,
`_fast_sqs_clock`, `_cheap_sqs_retention_check`, `_lex_once_per_expression` and
`_method_names_once_per_class`), all the emulator's, not AWS's; and
with `keep_alive` (the sandbox's emulator process) connections outlive a request (see
`_KeepAliveRequestHandler`: werkzeug's own handler closes every one, so each request
paid a new connection and thread; waitress keeps them alive but never answers an
`Expect: 100-continue` request with an empty body, which boto3 sends for an empty S3
object).
"""

from __future__ import annotations

import contextlib
import functools
import io
import socket
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, cast

import moto.core.responses
import moto.dynamodb.comparisons
import moto.sqs.models
from moto.core.utils import unix_time as _moto_unix_time
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import ClientDisconnected, InternalServerError
from werkzeug.serving import connection_dropped_errors, make_server
from werkzeug.wsgi import LimitedStream

from sandbox import s3_events, settings
from sandbox.service_metrics import EmulatorRequest, signing_service
from sandbox.serving import BackgroundServer, notify

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class _QuietRequestHandler(MotoRequestHandler):
    """moto's handler without a log line per request (the sandbox reports progress itself)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


IDLE_CONNECTION_SECONDS = 60.0  # a kept-alive connection's thread ends after this long idle


class _KeepAliveRequestHandler(_QuietRequestHandler):
    """moto's handler, keeping HTTP/1.1 connections alive between requests.

    werkzeug's `run_wsgi` (3.x) closes every connection: it adds `Connection: close` to
    each response and then reads whatever the client sent next, to throw it away, because
    it never bounds the request body. So every request paid a new connection, and a new
    thread here. This `run_wsgi` is werkzeug's with the body bounded instead (its
    `Content-Length`, or the chunked encoding's end), so what follows on the connection
    is the next request: the connection stays open unless the client asks to close it or
    the body can't be delimited. Kept from werkzeug and moto: the immediate
    `100 Continue` (boto3 sends `Expect: 100-continue` even for an empty object), and
    moto's environ, which keeps headers whose names contain `_` (S3 metadata).
    """

    timeout = IDLE_CONNECTION_SECONDS
    # A response goes out as one write (head and body buffered until flushed), and without
    # Nagle's algorithm: on a kept-alive connection a second small write would otherwise
    # wait for the client's delayed ACK (~40 ms), as the fault proxy's once did.
    wbufsize = -1
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        environ = self.make_environ()
        body = self._bounded_body(environ)
        exchange = _Exchange(self, environ)
        try:
            exchange.run(self.server.app)
        except connection_dropped_errors:
            self.close_connection = True
            return
        except Exception as error:  # as werkzeug: a 500 if nothing was sent yet
            self.close_connection = True
            exchange.fail(error)
            return
        if body is None or self.close_connection:
            self.close_connection = True
            return
        try:
            while body.read(_DRAIN_CHUNK):  # what the application left of the body
                pass
        except (OSError, ValueError, ClientDisconnected):
            self.close_connection = True

    def _bounded_body(self, environ: WSGIEnvironment) -> Any:
        """The request body as a stream that ends where the body ends; None if unknown."""
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput
            return environ["wsgi.input"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length < 0:
            return None
        stream = LimitedStream(cast("IO[bytes]", self.rfile), length)  # a socket's reader
        environ["wsgi.input"] = stream
        return stream


_DRAIN_CHUNK = 1 << 16


class _Exchange:
    """One response of :class:`_KeepAliveRequestHandler`: werkzeug's `write` and
    `start_response`, without `Connection: close`. A response without `Content-Length`
    is chunked (HTTP/1.1) or ends the connection (HTTP/1.0), so its end is always known."""

    def __init__(self, handler: _KeepAliveRequestHandler, environ: WSGIEnvironment) -> None:
        self._handler = handler
        self._environ = environ
        self._status: str | None = None
        self._headers: list[tuple[str, str]] = []
        self._sent = False
        self._chunked = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        if exc_info and self._sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self._status, self._headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        handler = self._handler
        if not self._sent:
            self._send_head()
        if data:
            if self._chunked:
                handler.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
            else:
                handler.wfile.write(data)
        handler.wfile.flush()

    def _send_head(self) -> None:
        handler = self._handler
        if self._status is None:
            raise AssertionError("write() before start_response")
        code, _, message = self._status.partition(" ")
        handler.send_response(int(code), message)
        names = set()
        for name, value in self._headers:
            handler.send_header(name, value)
            names.add(name.lower())
        delimited = (
            "content-length" in names
            or self._environ["REQUEST_METHOD"] == "HEAD"
            or 100 <= int(code) < 200
            or int(code) in {204, 304}
        )
        if not delimited:
            if handler.request_version >= "HTTP/1.1":
                self._chunked = True
                handler.send_header("Transfer-Encoding", "chunked")
            else:
                handler.close_connection = True  # the body ends where the connection does
        if handler.close_connection:  # the client asked, or a failure: say so
            handler.send_header("Connection", "close")
        handler.end_headers()
        self._sent = True

    def run(self, app: WSGIApplication) -> None:
        answer = app(self._environ, self.start_response)
        try:
            for data in answer:
                self.write(data)
            if not self._sent:
                self.write(b"")
            if self._chunked:
                self._handler.wfile.write(b"0\r\n\r\n")
                self._handler.wfile.flush()
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()

    def fail(self, error: Exception) -> None:
        """Log the error, then answer 500 if no part of the response went out yet.

        Logged first: once a client has its 500, the log already says why.
        """
        self._handler.log_error("Error on request: %r", error)
        if not self._sent:
            self._status, self._chunked = None, False
            with contextlib.suppress(Exception):
                self.run(InternalServerError())


MAX_REMEMBERED_HOSTS = 256


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host.

    moto answers that by listing its own package directory (a stat of every service
    module) on each request; the answer never changes while the process runs.
    """

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backend_for_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        try:
            return self._backend_for_host[host]
        except KeyError:
            backend = super().get_backend_for_host(host)
            # Hosts come from requests: a bounded memory, whatever clients send.
            if len(self._backend_for_host) < MAX_REMEMBERED_HOSTS:
                self._backend_for_host[host] = backend
            return backend


def _unix_time(dt: datetime | None = None) -> float:
    return time.time() if dt is None else _moto_unix_time(dt)


def _unix_time_millis(dt: datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


def _fast_sqs_clock() -> None:
    """moto's SQS reads the clock through two datetimes per message per ReceiveMessage
    (each message's visibility and delay), so a receive costs O(messages in the queue)
    datetime work and a backlog of uploads slows every poll. The same value, from
    time.time(); with an explicit datetime the call is moto's own."""
    moto.sqs.models.unix_time = _unix_time  # type: ignore[attr-defined]
    moto.sqs.models.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]


def _retained(backend: Any, queue_name: str, message: Any) -> bool:
    queue = backend.get_queue(queue_name)
    retain_until = queue.message_retention_period + message.sent_timestamp / 1000
    return bool(retain_until > moto.sqs.models.unix_time())  # type: ignore[attr-defined]


def _cheap_sqs_retention_check() -> None:
    """moto's SQS checks each received message's retention by building every attribute of
    its queue (counting all its messages, visible and not): O(messages) work per message,
    so again a backlog slows every receive. The same check, from the one attribute."""
    backend = moto.sqs.models.SQSBackend
    # A patch of moto's method, as the module's others: the same signature, untyped self.
    backend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign,assignment]


MAX_REMEMBERED_EXPRESSIONS = 256


def _lex_once_per_expression() -> None:
    """moto's DynamoDB lexes a condition expression again for every conditional write (the
    ledger's put has one, the same text each time): a regex per token, ~8% of the
    emulator's CPU in a burst. The tokens depend on the text alone and are never changed
    after (parsing consumes a copy), so each text is lexed once."""
    parser = moto.dynamodb.comparisons.ConditionExpressionParser
    lex = parser._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}

    def lex_once(self: Any) -> deque[Any]:
        text = self.condition_expression
        tokens = lexed.get(text)
        if tokens is None:
            tokens = tuple(lex(self))
            if len(lexed) < MAX_REMEMBERED_EXPRESSIONS:  # texts come from clients: bounded
                lexed[text] = tokens
        return deque(tokens)

    parser._lex_condition_expression = lex_once  # type: ignore[method-assign]


def _method_names_once_per_class() -> None:
    """moto lists a response class's methods (inspect.getmembers) on every request to
    check that the action exists; a class's methods don't change while it serves."""
    responses: Any = moto.core.responses  # the name it imported from moto.core.utils
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


_fast_sqs_clock()
_cheap_sqs_retention_check()
_lex_once_per_expression()
_method_names_once_per_class()


class _Observed:
    """WSGI middleware: hands each answered request to the observers (after moto answered)."""

    def __init__(self, app: WSGIApplication, observers: list[Callable[[EmulatorRequest], None]]):
        self._app = app
        self._observers = observers

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not self._observers:
            return self._app(environ, start_response)
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        # Bodies of a known length are read for the observers only for SQS (its parameters);
        # the others are left alone: S3 uploads may stream, the observers need only S3's
        # method and path, and they count nothing of DynamoDB's (every write of the ledger).
        body = b""
        length = environ.get("CONTENT_LENGTH")
        if length and signing_service(headers.get("authorization", "")) == "sqs":
            body = environ["wsgi.input"].read(int(length))
            environ["wsgi.input"] = io.BytesIO(body)
        status: list[int] = []

        def capture(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(status_line.split(" ", 1)[0]))
            return start_response(status_line, headers, exc_info)

        answer = self._app(environ, capture)
        request = EmulatorRequest(
            method=environ["REQUEST_METHOD"],
            # Still percent-encoded (PATH_INFO is decoded as Latin-1 by WSGI).
            path=str(environ.get("RAW_URI") or environ.get("PATH_INFO", "")).split("?", 1)[0],
            query=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=body,
            status=status[0] if status else 500,
        )
        notify(self._observers, request, "a request")
        return answer


LISTEN_BACKLOG = 128  # werkzeug's own
# moto routes object keys with `.+`, which stops at a line feed: such a request would
# fail as a bare 404. S3 itself accepts these keys; say plainly that this is our limit.
LINE_FEED_KEY_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>'
    b"<Message>Emulator limit: the sandbox's S3 (moto) cannot route object keys that "
    b"contain a line feed (LF, %0A); AWS S3 accepts them. Use a key without one in the "
    b"sandbox.</Message></Error>"
)


def _refuse_line_feed_keys(app: WSGIApplication) -> WSGIApplication:
    """WSGI middleware: a 501 NotImplemented naming the emulator limit, not moto's 404."""

    def refusing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if "\n" not in environ.get("PATH_INFO", ""):
            return app(environ, start_response)
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(
            "501 Not Implemented",
            [
                ("Content-Type", "application/xml"),
                ("Content-Length", str(len(LINE_FEED_KEY_ERROR))),
            ],
        )
        return [LINE_FEED_KEY_ERROR]

    return refusing


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on (host, port); OSError if the port is taken."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A TIME-WAIT connection left by the last run on this port is no obstacle.
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        listening.listen(LISTEN_BACKLOG)
    except OSError:
        listening.close()
        raise
    return listening


class MotoServer(BackgroundServer):
    """moto in server mode on a free port of 127.0.0.1."""

    def __init__(
        self, host: str = settings.SANDBOX_HOST, port: int = 0, *, keep_alive: bool = False
    ) -> None:
        """keep_alive: serve HTTP/1.1 connections past one request (see
        `_KeepAliveRequestHandler`); the sandbox's emulator process does. Off, each
        connection ends with its response, as werkzeug's own handler does, and stop()
        leaves no connection's thread behind."""
        s3_events.install()  # S3 events with sequencer and versionId, as S3 sends them
        # Called with every request moto answered (sandbox.service_metrics counts them).
        self.observers: list[Callable[[EmulatorRequest], None]] = []
        app = _Observed(
            _refuse_line_feed_keys(_Dispatcher()),
            self.observers,
        )
        # Bound here, not by werkzeug: on a port in use werkzeug prints and calls sys.exit(1);
        # we raise OSError (EADDRINUSE) for the caller to report.
        with _listening_socket(host, port) as listening:
            server = make_server(
                host,
                port,
                app,
                threaded=True,
                request_handler=_KeepAliveRequestHandler if keep_alive else _QuietRequestHandler,
                fd=listening.fileno(),  # werkzeug serves a duplicate of it
            )
        super().__init__(server, "sandbox-moto")

    def reset(self) -> None:
        """Forget every resource: moto is process-wide, so the next sandbox starts clean."""
        url = f"{self.url}/moto-api/reset"  # always http://127.0.0.1, our own server
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - see above
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - see above
            pass
