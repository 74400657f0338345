"""The emulator's own process: moto's server (sandbox.emulator.MotoServer) for one sandbox.

Started by :class:`sandbox.emulator_process.EmulatorProcess` as
`python -m sandbox._emulator --port N --events-fd FD`, so moto's CPU (werkzeug, its
services, S3's notifications into SQS) runs beside the sandbox's process, not under its GIL.

Protocol:
- on the events descriptor (a pipe, `multiprocessing.connection` framing): first
  `("ready", port)`, or `("error", errno, message)` if the port can't be bound, or
  `("import-error", message)` if moto can't be imported; then
  `("observed", [EmulatorRequest, ...])` batches of the requests moto answered that the
  service metrics may count, in the order they were answered; and `("settled", n)` once
  every request answered before the parent's `settle n` was sent;
- on stdin, one command a line: `settle N`. End of stdin (the parent closed it, exited or
  was killed: the kernel closes its end) ends this process at once, so an emulator never
  outlives its sandbox.

Ctrl-C in a terminal reaches the whole process group: this process ignores it and ends
when the sandbox, which handles it, closes the pipe.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection

from sandbox.service_metrics import EmulatorRequest, may_count
from sandbox.serving import BackgroundServer

RELAY_BATCH_SECONDS = 0.005  # how long observed requests gather before they are sent


class _Relay:
    """Sends observed requests to the parent from one thread, as many per message as are
    waiting, so a burst costs one pipe write per batch, not per request; a request thread
    only appends, and wakes the sender only when it sleeps."""

    def __init__(self, events: Connection) -> None:
        self._events = events
        self._pending: collections.deque[EmulatorRequest | int] = collections.deque()
        self._wake = threading.Event()
        self._settling = False
        threading.Thread(target=self._send_forever, name="emulator-relay", daemon=True).start()

    def observe(self, request: EmulatorRequest) -> None:
        if may_count(request):
            self._pending.append(request)
            # Waking a thread is the costly part (a condition's notify, then a switch):
            # while the sender is awake or gathering a batch, the event is still set.
            if not self._wake.is_set():
                self._wake.set()

    def settle(self, marker: int) -> None:
        """Answer `("settled", marker)` after every request observed before this call."""
        self._pending.append(marker)
        self._settling = True
        self._wake.set()

    def _send_forever(self) -> None:
        while True:
            self._wake.wait()
            if not self._settling:  # gather what a burst brings; a settle waits for none
                time.sleep(RELAY_BATCH_SECONDS)
            self._settling = False
            self._wake.clear()  # before draining: an append after this wakes us again
            batch: list[EmulatorRequest] = []
            while self._pending:
                item = self._pending.popleft()
                if isinstance(item, int):
                    self._send_batch(batch)
                    batch = []
                    self._events.send(("settled", item))
                else:
                    batch.append(item)
            self._send_batch(batch)

    def _send_batch(self, batch: list[EmulatorRequest]) -> None:
        if batch:
            self._events.send(("observed", batch))


def start_server(
    host: str, port: int, events: Connection
) -> tuple[BackgroundServer, _Relay] | None:
    """moto's server on (host, port), serving, its answered requests relayed on `events`,
    and `("ready", port)` sent; None when it can't start (the reason sent instead)."""
    try:
        # Here, not at the top: outside the project's environment moto may be missing or
        # another version, which the sandbox reports in one line, not as our traceback.
        from sandbox.emulator import MotoServer  # noqa: PLC0415 - see above
    except ImportError as error:
        events.send(("import-error", str(error)))
        return None
    try:
        server = MotoServer(host=host, port=port, keep_alive=True)
    except OSError as error:
        events.send(("error", error.errno, str(error)))
        return None
    relay = _Relay(events)
    server.observers.append(relay.observe)
    server.start()
    events.send(("ready", server.port))
    return server, relay


def follow_commands(commands: Iterable[bytes], relay: _Relay) -> None:
    """Obey the sandbox's commands, one a line, until their end (see the module's note)."""
    for line in commands:
        command, _, argument = line.strip().partition(b" ")
        if command == b"settle":
            relay.settle(int(argument))


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sandbox handles Ctrl-C and ends us
    parser = argparse.ArgumentParser(prog="python -m sandbox._emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events-fd", type=int, required=True)
    args = parser.parse_args(argv)
    events = Connection(args.events_fd, readable=False)
    started = start_server(args.host, args.port, events)
    if started is None:
        return 1
    follow_commands(sys.stdin.buffer, started[1])
    # The sandbox closed the pipe, or died. Requests in flight die with us: the sandbox
    # closes it only when it no longer needs them.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
