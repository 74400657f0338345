"""The one front door to a running sandbox.

`python -m sandbox up` serves a small control API on 127.0.0.1 (:class:`ControlServer`)
and records where in `.sandbox/state.json`; every other command attaches to it with
:meth:`RunningSandbox.attach` and asks the running sandbox itself, so the ledger, the
redrive and the faults are those of the one runtime, and its counters stay true.

The API (JSON bodies, a per-run token in the ``X-Sandbox-Token`` header, the state file
readable by its owner only):

- ``GET /status``: pid, endpoints, resource names, active faults, the runtime's counters;
- ``GET /ledger``: the ledger table's items;
- ``PUT /faults``: replace the injected faults (a :class:`Faults` as an object);
- ``POST /redrive``: ``{"bypass_faults": bool}``, replay the failure queue (a
  :class:`RedriveResult` plus ``remaining``, the messages left in the queue).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox import settings
from sandbox.faults import Faults
from sandbox.runtime import RedriveResult
from sandbox.sandbox import Sandbox
from sandbox.serving import BackgroundServer

STATE_PATH = Path(settings.SANDBOX_STATE_DIR) / settings.SANDBOX_STATE_FILE
TOKEN_HEADER = "X-Sandbox-Token"  # noqa: S105 - a header name, not a secret
ATTACH_TIMEOUT_SECONDS = 5.0
# A redrive invokes the handler once per failure record: allow for a long queue.
REDRIVE_TIMEOUT_SECONDS = 900.0


class NotRunningError(RuntimeError):
    """No sandbox answers at the state file's address (the message says what to do)."""


class AlreadyRunningError(RuntimeError):
    """A sandbox already runs in this folder (the message names it)."""


@dataclass(frozen=True)
class RedriveOutcome:
    """A redrive as the running sandbox reports it."""

    result: RedriveResult
    remaining: int  # messages still in the failure queue (records and non-records)
    faults: Faults  # the faults active during the redrive
    bypassed_faults: bool


class ControlServer(BackgroundServer):
    """The control API of a sandbox, on a free port of 127.0.0.1, in a thread."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.token = secrets.token_urlsafe(24)
        server = ThreadingHTTPServer((settings.SANDBOX_HOST, 0), self._handler_class())
        server.daemon_threads = True
        super().__init__(server, "sandbox-control")
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("GET", "/status"): lambda _: status(self.sandbox),
            ("GET", "/ledger"): lambda _: self.sandbox.ledger(),
            ("PUT", "/faults"): self._set_faults,
            ("POST", "/redrive"): self._redrive,
        }

    def _set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sandbox.set_faults(Faults(**body))
        return asdict(self.sandbox.faults)

    def _redrive(self, body: dict[str, Any]) -> dict[str, Any]:
        bypass = bool(body.get("bypass_faults"))
        faults = self.sandbox.faults
        result = self.sandbox.redrive(bypass_faults=bypass)
        return {
            "result": asdict(result),
            "remaining": self.sandbox.failure_queue_depth(),
            "faults": asdict(faults),
            "bypassed_faults": bypass,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: `up` shows progress itself."""

            def _serve(self) -> None:
                route = control._routes.get((self.command, self.path))
                if not secrets.compare_digest(self.headers.get(TOKEN_HEADER, ""), control.token):
                    self._answer(403, {"error": "wrong or missing token"})
                    return
                if route is None:
                    self._answer(404, {"error": f"no {self.command} {self.path}"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(length) or b"{}")
                    self._answer(200, route(body))
                except (TypeError, ValueError) as error:  # a bad request: say what
                    self._answer(400, {"error": str(error)})
                except Exception as error:  # the sandbox failed: tell the caller, keep serving
                    self._answer(500, {"error": repr(error)})

            do_GET = do_PUT = do_POST = _serve

            def _answer(self, status: int, payload: Any) -> None:
                data = json.dumps(payload, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def status(sandbox: Sandbox) -> dict[str, Any]:
    """What `GET /status` answers: who and where the sandbox is, its faults and counters."""
    return {
        "pid": os.getpid(),
        "endpoint_url": sandbox.endpoint_url,
        "region": sandbox.region,
        "bucket_name": sandbox.bucket_name,
        "table_name": sandbox.table_name,
        "failure_queue_url": sandbox.failure_queue_url,
        "faults": asdict(sandbox.faults),
        "stats": sandbox.stats(),
    }


def write_state(control: ControlServer, state_path: Path = STATE_PATH) -> None:
    """Record the running sandbox for the other commands (owner-only: it holds the token)."""
    sandbox = control.sandbox
    state = {
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "control_url": control.url,
        "token": control.token,
        "endpoint_url": sandbox.endpoint_url,
        "region": sandbox.region,
        "bucket_name": sandbox.bucket_name,
        "table_name": sandbox.table_name,
        "failure_queue_url": sandbox.failure_queue_url,
    }
    state_path.parent.mkdir(parents=True, exist_ok=True)
    partial = state_path.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(state, file, indent=2)
    partial.replace(state_path)  # atomic: a reader never sees half a file


def remove_state(token: str, state_path: Path = STATE_PATH) -> None:
    """Remove the state file if it is still this run's (never another sandbox's)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(state_path.read_text(encoding="utf-8")).get("token") == token:
            state_path.unlink()


class RunningSandbox:
    """A sandbox served by `up` in another process, attached through its state file."""

    def __init__(self, state: dict[str, Any], state_path: Path) -> None:
        self.state = state
        self.state_path = state_path

    @classmethod
    def attach(cls, state_path: Path = STATE_PATH) -> RunningSandbox:
        """The sandbox the state file names, if it answers.

        Raises NotRunningError when there is no state file, or when the sandbox it names
        no longer answers (killed, crashed): then the stale file is removed.
        """
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            control_url, pid = str(state["control_url"]), int(state["pid"])
        except FileNotFoundError:
            raise NotRunningError(
                f"no sandbox is running ({state_path} is missing): start one with "
                "`python -m sandbox up` in another terminal"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            state_path.unlink(missing_ok=True)
            raise NotRunningError(
                f"{state_path} was unreadable ({error}) and was removed: start a sandbox "
                "with `python -m sandbox up`"
            ) from None
        running = cls(state, state_path)
        try:
            running.status()
        except (urllib.error.URLError, OSError) as error:
            if _process_alive(pid):
                raise NotRunningError(
                    f"the sandbox in {state_path} (pid {pid}) does not answer at "
                    f"{control_url} ({_reason(error)}); is it stopped (Ctrl-Z)?"
                ) from None
            state_path.unlink(missing_ok=True)
            raise NotRunningError(
                f"the sandbox in {state_path} (pid {pid}, started {state.get('started_at')}) "
                "no longer runs; removed its stale state: start one with `python -m sandbox up`"
            ) from None
        return running

    def describe(self) -> str:
        """One line naming this sandbox (pid, endpoint, start time)."""
        s = self.state
        return f"pid {s['pid']} at {s['endpoint_url']}, started {s.get('started_at')}"

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self._call("GET", "/status")
        return status

    def ledger(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._call("GET", "/ledger")
        return items

    def faults(self) -> Faults:
        return Faults(**self.status()["faults"])

    def set_faults(self, faults: Faults) -> Faults:
        return Faults(**self._call("PUT", "/faults", asdict(faults)))

    def redrive(self, *, bypass_faults: bool = False) -> RedriveOutcome:
        answer = self._call(
            "POST", "/redrive", {"bypass_faults": bypass_faults}, REDRIVE_TIMEOUT_SECONDS
        )
        return RedriveOutcome(
            result=RedriveResult(**answer["result"]),
            remaining=int(answer["remaining"]),
            faults=Faults(**answer["faults"]),
            bypassed_faults=bool(answer["bypassed_faults"]),
        )

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float = ATTACH_TIMEOUT_SECONDS,
    ) -> Any:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 from our state file
            f"{self.state['control_url']}{path}",
            data=json.dumps(body or {}).encode(),
            method=method,
            headers={TOKEN_HEADER: str(self.state["token"]), "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("error", error.reason)
            raise SandboxRequestError(f"the sandbox refused {method} {path}: {detail}") from None


class SandboxRequestError(RuntimeError):
    """The running sandbox answered a request with an error (the message says which)."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds that pid now
        return False
    return True


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    return str(reason)
