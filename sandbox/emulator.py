"""The AWS emulator: moto's server app on 127.0.0.1, in a thread we can stop and close.

moto's ThreadedMotoServer shuts the serve loop down but never closes the listening
socket, so the port would stay bound after `stop()`; this wrapper closes it.
"""

from __future__ import annotations

import threading
import urllib.request

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox import settings


class _QuietRequestHandler(MotoRequestHandler):
    """moto's handler without a log line per request (the sandbox reports progress itself)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class MotoServer:
    """moto in server mode on a free port of 127.0.0.1."""

    def __init__(self, host: str = settings.SANDBOX_HOST, port: int = 0) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-moto", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{settings.SANDBOX_HOST}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def reset(self) -> None:
        """Forget every resource: moto is process-wide, so the next sandbox starts clean."""
        url = f"{self.url}/moto-api/reset"  # always http://127.0.0.1, our own server
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - see above
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - see above
            pass

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
