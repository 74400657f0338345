"""A local server served from a daemon thread: the emulator, the fault proxy, the console;
and how such a server tells its observers what it served."""

from __future__ import annotations

import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TypeVar

Observed = TypeVar("Observed")


def notify(observers: Iterable[Callable[[Observed], None]], item: Observed, what: str) -> None:
    """Hand ``item`` to each observer; one that fails is reported on stderr (``observing
    WHAT failed``) and the others still run: metrics never change what was answered."""
    for observer in observers:
        try:
            observer(item)
        except Exception as error:
            print(f"sandbox: observing {what} failed: {error!r}", file=sys.stderr)


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
