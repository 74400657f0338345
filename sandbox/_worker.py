"""One Lambda execution environment: imports the handler from the asset, then invokes it.

Run as a script with `python -I` (standard library only), so the only `handler` package
it can import is the one in the asset directory from `cdk.out`, exactly what deploys.

Protocol: one JSON request per line on stdin, one JSON answer per line on the file
descriptor that was stdout at start. The function's own output (logs, metrics) goes to
stderr, which the runtime sends to the sandbox's function log, as CloudWatch would.
Each answer also carries `durationMs` (the handler's run time, Lambda's Duration) and
`emf`: the Embedded Metric Format lines the function printed during the invocation,
which CloudWatch Logs would turn into metrics.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from typing import Any, TextIO

EMF_MARKER = '"_aws"'


class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.function_name: str = fields["function_name"]
        self.function_version: str = fields["function_version"]
        self.invoked_function_arn: str = fields["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(fields["memory_limit_in_mb"])
        self.aws_request_id: str = fields["aws_request_id"]
        self.log_group_name: str = fields["log_group_name"]
        self.log_stream_name: str = fields["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms: int = int(fields["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _OutputCapture:
    """sys.stdout for the function: writes go to the log; EMF lines are kept too."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._buffer: list[str] = []

    def write(self, text: str) -> int:
        self._buffer.append(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def emf_lines(self) -> list[str]:
        """The EMF lines written since the last call (and forget the rest)."""
        text, self._buffer = "".join(self._buffer), []
        return [line for line in text.splitlines() if EMF_MARKER in line]


def _error(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": error_type or type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error),
    }


def _load(asset_dir: str, entry: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, function_name = entry.rpartition(".")
    sys.path.insert(0, asset_dir)
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function_name), None
    except ImportError as error:
        return None, _error(error, "Runtime.ImportModuleError")
    except Exception as error:  # any init failure is reported, as Lambda does
        return None, _error(error, f"Runtime.{type(error).__name__}")


def main() -> None:
    # Ctrl-C in a terminal signals the whole process group; the runtime ends environments
    # itself (EOF on stdin), so a KeyboardInterrupt traceback here would only be log noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asset_dir, entry = sys.argv[1], sys.argv[2]
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # everything the function prints goes to the log
    output = _OutputCapture(sys.stdout)
    sys.stdout = output  # a text stream in every way the function uses
    started = time.monotonic()
    handler, init_error = _load(asset_dir, entry)
    module = sys.modules.get(entry.rpartition(".")[0])
    ready = {"ready": init_error is None, "module_file": getattr(module, "__file__", None)}
    ready["init_ms"] = round((time.monotonic() - started) * 1000, 1)
    answers.write(json.dumps(ready) + "\n")
    answers.flush()
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["context"])
        print(f"START RequestId: {context.aws_request_id} Version: {context.function_version}")
        output.emf_lines()  # forget what came before this invocation
        began = time.monotonic()
        answer = init_error
        if handler is not None:
            try:
                answer = {"ok": True, "result": handler(request["event"], context)}
            except Exception as error:  # the handler's failure goes back to the runtime
                answer = _error(error)
        took = (time.monotonic() - began) * 1000
        print(f"END RequestId: {context.aws_request_id}")
        print(f"REPORT RequestId: {context.aws_request_id}\tDuration: {took:.2f} ms", flush=True)
        answer = {**(answer or {}), "durationMs": round(took, 3), "emf": output.emf_lines()}
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
