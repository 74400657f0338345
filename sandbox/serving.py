"""A local server served from a daemon thread: the emulator, the fault proxy, the console."""

from __future__ import annotations

import socketserver
import threading
from types import TracebackType


class BackgroundServer:
    """Serves `server` (bound to 127.0.0.1) from a daemon thread named `name` until stop().

    stop() also closes the listening socket, so the port is free again at once.
    """

    def __init__(self, server: socketserver.TCPServer, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
