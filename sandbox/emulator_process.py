"""moto in a process of its own, started and stopped by the sandbox.

moto answers every request in Python: in the sandbox's own process its CPU (werkzeug,
moto's S3, SQS, DynamoDB and CloudWatch) shared one GIL with the fault proxy, the runtime
and the upload clients. Here it runs in a child (`python -m sandbox._emulator`, see there
for the protocol), on another core; this module imports no moto.

- The child dies with the sandbox: it ends when its stdin reaches end of file, which the
  kernel delivers when this process closes the pipe, exits or is killed (no orphan
  emulator after Ctrl-C or a crash), and it ignores Ctrl-C itself.
- Requests the service metrics count reach this process's observers in the order moto
  answered them, in batches over a pipe; :meth:`EmulatorProcess.settle` waits until every
  request answered so far was observed (before reading metrics, or before a simulated
  clock moves on).
- A new process is a new moto: nothing to reset between sandboxes.
"""

from __future__ import annotations

import errno as errno_codes
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sandbox import settings
from sandbox.service_metrics import EmulatorRequest
from sandbox.serving import notify

START_TIMEOUT_SECONDS = 120.0  # importing moto on a loaded 2-core machine
SETTLE_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
_SOURCE_ROOT = Path(__file__).resolve().parent.parent  # where `sandbox` is importable from


class EmulatorStartError(RuntimeError):
    """The emulator's process exited or hung before it served."""


class EmulatorProcess:
    """moto's server for one sandbox, in a child process on 127.0.0.1.

    `observers` are called (from a thread of this process) with each answered request the
    service metrics may count; an observer's exception is printed, never raised.
    """

    def __init__(self, host: str = settings.SANDBOX_HOST, port: int = 0) -> None:
        self._host, self._requested_port = host, port
        self.observers: list[Callable[[EmulatorRequest], None]] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._events: Connection | None = None
        self._reader: threading.Thread | None = None
        self._settled = threading.Condition()
        self._last_settled = 0
        self._settles_sent = 0
        self._control_lock = threading.Lock()
        self._gone = False
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The emulator's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        """Start the child and wait until it serves; OSError (EADDRINUSE...) if its port
        can't be bound, ImportError if it can't import moto (a Python other than the
        project's), EmulatorStartError if it exits or hangs first."""
        read_end, write_end = os.pipe()
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(_SOURCE_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
        )
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own module and interpreter
                [
                    sys.executable,
                    "-m",
                    "sandbox._emulator",
                    "--host",
                    self._host,
                    "--port",
                    str(self._requested_port),
                    "--events-fd",
                    str(write_end),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                pass_fds=(write_end,),
                env=environment,
            )
        finally:
            os.close(write_end)  # the child holds it now: its exit is our end of file
        self._events = Connection(read_end, writable=False)
        self.port = self._await_ready()
        self._reader = threading.Thread(target=self._read, name="sandbox-emulator", daemon=True)
        self._reader.start()

    def _await_ready(self) -> int:
        events = self._events
        assert events is not None  # noqa: S101 - set by start()
        try:
            if not events.poll(START_TIMEOUT_SECONDS):
                raise EmulatorStartError(
                    f"the emulator did not start within {START_TIMEOUT_SECONDS:.0f} s"
                )
            message = events.recv()
        except EOFError:
            code = self._process.wait() if self._process is not None else None
            raise EmulatorStartError(
                f"the emulator exited while starting (exit status {code}; its error is above)"
            ) from None
        except BaseException:
            self.stop()
            raise
        if message[0] == "import-error":
            self.stop()
            raise ImportError(message[1])
        if message[0] == "error":
            self.stop()
            number, text = message[1], message[2]
            raise OSError(number or errno_codes.EIO, text)
        return int(message[1])

    def _read(self) -> None:
        events = self._events
        assert events is not None  # noqa: S101 - set by start()
        try:
            while True:
                kind, payload = events.recv()
                if kind == "observed":
                    self._observe(payload)
                elif kind == "settled":
                    with self._settled:
                        self._last_settled = int(payload)
                        self._settled.notify_all()
        except (EOFError, OSError):  # the emulator ended
            with self._settled:
                self._gone = True
                self._settled.notify_all()

    def _observe(self, requests: list[EmulatorRequest]) -> None:
        for request in requests:
            notify(self.observers, request, "a request")

    def settle(self, timeout: float = SETTLE_TIMEOUT_SECONDS) -> None:
        """Return once every request the emulator answered before this call was observed.

        A no-op when the emulator is not running; TimeoutError after `timeout` seconds.
        """
        process = self._process
        if process is None or process.stdin is None or self._gone:
            return
        with self._control_lock:
            self._settles_sent += 1
            marker = self._settles_sent
            try:
                process.stdin.write(b"settle %d\n" % marker)
                process.stdin.flush()
            except (OSError, ValueError):  # it ended meanwhile: nothing more will come
                return
        with self._settled:
            if not self._settled.wait_for(
                lambda: self._last_settled >= marker or self._gone, timeout
            ):
                raise TimeoutError(
                    f"the emulator's observed requests did not arrive in {timeout} s"
                )

    def stop(self) -> None:
        """End the child (end of file on its stdin, SIGKILL if it lingers) and reap it."""
        process, self._process = self._process, None
        if process is not None:
            with self._control_lock:
                try:
                    if process.stdin is not None:
                        process.stdin.close()
                except OSError:
                    pass  # a dead child's pipe: nothing to flush
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join()
            self._reader = None
        if self._events is not None:
            self._events.close()
            self._events = None

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
