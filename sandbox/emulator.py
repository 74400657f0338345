"""The AWS emulator: moto's server app on 127.0.0.1, in a thread we can stop and close.

The listening socket is bound here, before the server starts: a taken port is an OSError
the caller reports (werkzeug would print and call `sys.exit`), the port is known as soon
as the constructor returns (no pick-then-rebind race with another process), and `stop()`
closes it.

Two of moto's per-request costs are taken out here (see `_Dispatcher` and
`_fast_sqs_clock`); both are the emulator's, not AWS's. (werkzeug's server, under moto,
still closes the connection after every response: a new connection and thread per
request. waitress would keep them alive, ~1.5 ms less CPU per request measured, but it
never answers an `Expect: 100-continue` request with an empty body, which boto3 sends
for an empty S3 object.)
"""

from __future__ import annotations

import io
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import moto.sqs.models
from moto.core.utils import unix_time as _moto_unix_time
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from sandbox import s3_events, settings
from sandbox.service_metrics import EmulatorRequest, signing_service
from sandbox.serving import BackgroundServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class _QuietRequestHandler(MotoRequestHandler):
    """moto's handler without a log line per request (the sandbox reports progress itself)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


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


_fast_sqs_clock()


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
        # Bodies of a known length are read for the observers (SQS's parameters); S3's are
        # left alone: uploads may stream, and the observers need only S3's method and path.
        body = b""
        length = environ.get("CONTENT_LENGTH")
        if length and signing_service(headers.get("authorization", "")) != "s3":
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
        for observer in self._observers:
            try:
                observer(request)
            except Exception as error:  # metrics never change what the emulator answered
                print(f"sandbox: observing a request failed: {error!r}", file=sys.stderr)
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

    def __init__(self, host: str = settings.SANDBOX_HOST, port: int = 0) -> None:
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
                request_handler=_QuietRequestHandler,
                fd=listening.fileno(),  # werkzeug serves a duplicate of it
            )
        super().__init__(server, "sandbox-moto")

    def reset(self) -> None:
        """Forget every resource: moto is process-wide, so the next sandbox starts clean."""
        url = f"{self.url}/moto-api/reset"  # always http://127.0.0.1, our own server
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - see above
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - see above
            pass
