"""`python -m sandbox` as an operator uses it: one front door to the running sandbox.

`up` runs in a subprocess in a temporary folder (its own `.sandbox/`); the other
commands run in this process against it, as they would from a second terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

import contract
from sandbox import settings
from sandbox.cli import main
from sandbox.template import TemplateError, load_service_template

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STATE = Path(settings.SANDBOX_STATE_DIR) / settings.SANDBOX_STATE_FILE


class Up:
    """`python -m sandbox up` running in `folder`."""

    def __init__(self, folder: Path, cdk_out: Path, *args: str) -> None:
        self.folder = folder
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "sandbox", "up", "--cdk-out", str(cdk_out), *args],
            cwd=folder,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's job
        )
        deadline = time.monotonic() + 90
        while not (folder / STATE).is_file():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"up did not start: {self.process.communicate()}")
            time.sleep(0.1)
        self.state: dict[str, Any] = json.loads((folder / STATE).read_text())

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["endpoint_url"],
            region_name=self.state["region"],
            aws_access_key_id=settings.SANDBOX_ACCESS_KEY,
            aws_secret_access_key=settings.SANDBOX_SECRET_KEY,
        )

    def emulator_pid(self) -> int:
        """The process id of up's emulator: moto runs in a child process of its own."""
        (pid,) = [
            child
            for task in Path(f"/proc/{self.process.pid}/task").iterdir()
            for child in map(int, (task / "children").read_text().split())
            if b"sandbox._emulator" in Path(f"/proc/{child}/cmdline").read_bytes()
        ]
        return pid

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C, as a terminal sends it: SIGINT to the whole process group (up and the
        function's execution environments); returns (exit status, stdout, stderr)."""
        os.killpg(self.process.pid, signal.SIGINT)
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, out, err


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def failure_queue_depth(up: Up) -> int:
    attributes = up.client("sqs").get_queue_attributes(
        QueueUrl=up.state["failure_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_an_outage_is_recovered_through_the_running_sandbox(  # noqa: PLR0915 - one story
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """up under a fault; a second up; redrive refused; faults changed; redrive; Ctrl-C."""
    up = Up(tmp_path, cdk_out, "--dynamodb-access-denied", "--retry-delay", "0.02")
    try:
        monkeypatch.chdir(tmp_path)

        # A second up in the same folder is refused, naming the running one.
        status, _, err = run(["up", "--cdk-out", str(cdk_out)], capsys)
        assert status == 1
        assert f"a sandbox already runs in this folder (pid {up.process.pid}" in err
        assert json.loads(STATE.read_text())["pid"] == up.process.pid  # state untouched

        bucket = up.state["bucket_name"]
        for n in range(3):
            up.client("s3").put_object(Bucket=bucket, Key=f"outage/{n}.txt", Body=b"x")
        up.client("sqs").send_message(
            QueueUrl=up.state["failure_queue_url"], MessageBody="not a failure record"
        )
        wait_for(lambda: failure_queue_depth(up) == 4)

        # Redrive while the fault is on: it says why, how to get past it, and fails.
        status, out, err = run(["redrive"], capsys)
        assert status == 1
        assert "Redrove 0 events; 4 still in the failure queue" in out
        assert "3 events failed again: BatchFailedError" in err
        assert "still injects faults (dynamodb-access-denied (seed 0))" in err
        assert "`python -m sandbox faults --none`" in err
        assert "--bypass-faults" in err
        assert "is not a failure record (not JSON); left in the queue" in err

        # The running sandbox's faults are shown and changed.
        status, out, _ = run(["faults"], capsys)
        assert (status, out.strip()) == (0, "Faults: dynamodb-access-denied (seed 0)")
        argv = ["faults", "--none", "--duplicate-rate", "0.5", "--seed", "3"]
        status, out, _ = run(argv, capsys)
        assert (status, out.strip()) == (0, "Faults: duplicate-rate 0.5 (seed 3)")
        status, out, _ = run(["faults", "--duplicate-rate", "0"], capsys)
        assert (status, out.strip()) == (0, "Faults: none")

        status, out, err = run(["redrive"], capsys)
        assert status == 0, err
        assert "Redrove 3 events; 1 still in the failure queue" in out  # the non-record stays

        status, out, _ = run(["ledger"], capsys)
        assert status == 0
        assert [f"outage/{n}.txt" in out for n in range(3)] == [True] * 3
        assert "3 ledger items" in out

        # up's own counters include what the redrive did.
        from sandbox.control import RunningSandbox

        stats = RunningSandbox.attach().status()["stats"]
        assert (stats["redriven"], stats["recorded"], stats["sent_to_failure_queue"]) == (3, 3, 3)

        # Ctrl-C: no traceback, state removed, a header and no KeyboardInterrupt in the log,
        # and no emulator left running.
        emulator = up.emulator_pid()
        status, out, err = up.interrupt()
        assert status == 0
        assert ended(emulator)
        assert "faults         dynamodb-access-denied (seed 0)" in out  # the banner said so
        assert "Traceback" not in err
        assert "Stopping the sandbox" in err
        assert not STATE.exists()
        log = (tmp_path / settings.SANDBOX_STATE_DIR / "function.log").read_text()
        assert "===== sandbox run started" in log
        assert "KeyboardInterrupt" not in log
        assert "Traceback" not in log
    finally:
        if up.process.poll() is None:
            up.process.kill()
            up.process.communicate()


def test_commands_against_a_killed_sandbox_say_so_and_clean_its_state(
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    killed = Up(tmp_path, cdk_out)
    emulator = killed.emulator_pid()
    killed.process.kill()
    killed.process.communicate()
    monkeypatch.chdir(tmp_path)
    assert ended(emulator), "the emulator outlived its killed sandbox"

    status, _, err = run(["ledger"], capsys)

    assert status == 1
    (line,) = err.splitlines()
    assert f"(pid {killed.process.pid}, started" in line
    assert "no longer runs; removed its stale state" in line
    assert not STATE.exists()
    status, _, err = run(["redrive"], capsys)
    assert status == 1
    assert "no sandbox is running" in err


def ended(pid: int, timeout: float = 30.0) -> bool:
    """Waits until process `pid` ended (gone, or a zombie awaiting its reaper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def service_template_file(cdk_out: Path) -> Path:
    (path,) = [
        p
        for p in cdk_out.glob("assembly-*-dev/*.template.json")
        if contract.HANDLER_ENTRY in p.read_text()
    ]
    return path


def corrupt_truncated(cdk_out: Path) -> None:
    path = service_template_file(cdk_out)
    path.write_text(path.read_text()[:500])


def corrupt_manifest(cdk_out: Path) -> None:
    (cdk_out / "manifest.json").write_text('{"version": "48.0.0", "artifacts": {')


def corrupt_missing_template(cdk_out: Path) -> None:
    service_template_file(cdk_out).unlink()


def corrupt_empty_template(cdk_out: Path) -> None:
    service_template_file(cdk_out).write_text("{}")


def corrupt_manifest_shape(cdk_out: Path) -> None:
    (cdk_out / "manifest.json").write_text(
        '{"artifacts": {"x": {"type": "aws:cloudformation:stack"}}}'
    )


def copy_of(cdk_out: Path, folder: Path) -> Path:
    copy = folder / "cdk.out"
    shutil.copytree(cdk_out, copy)
    return copy


@pytest.mark.parametrize(
    ("corrupt", "says"),
    [
        (corrupt_truncated, "is not valid JSON"),
        (corrupt_manifest, "manifest.json is not valid JSON"),
        (corrupt_missing_template, "is missing: cdk.out is incomplete"),
        (corrupt_empty_template, "has no Resources: cdk.out is corrupted"),
        (corrupt_manifest_shape, "is not a cloud assembly the sandbox can read"),
    ],
)
def test_a_corrupted_cdk_out_is_a_one_line_error_naming_make_synth(  # noqa: PLR0917 - fixtures
    corrupt: Any,
    says: str,
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy = copy_of(cdk_out, tmp_path)
    corrupt(copy)
    with pytest.raises(TemplateError, match=says):
        load_service_template(copy)
    monkeypatch.chdir(tmp_path)

    status, _, err = run(["demo", "--cdk-out", str(copy)], capsys)

    assert status == 2
    (line,) = err.splitlines()[1:]  # after "Starting the sandbox..."
    assert says in line
    assert "make synth" in line


def test_demo_with_a_runtime_that_exits_at_import_sends_every_event_to_the_failure_queue(
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy = copy_of(cdk_out, tmp_path)
    asset = load_service_template(copy).function.asset_dir
    (asset / "handler" / "app.py").write_text("import os\nos._exit(137)\n")
    monkeypatch.chdir(tmp_path)

    status, out, err = run(["demo", "--cdk-out", str(copy), "--retry-delay", "0.01"], capsys)

    assert status == 1
    # The upload line announces as many uploads as the summary counts events.
    assert "then a second version of 'reports/2024/q1 summary.csv' (8 uploads)" in err
    assert "0 ledger items, 8 events in the failure queue" in out
    assert "8 to the failure queue" in out
    # The copy's handler differs from the repository's: the sandbox says it runs old code.
    assert "is older than the handler's sources (handler/app.py changed since)" in err
    assert "run `make synth`" in err


def _demo_summary(
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *options: str,
) -> tuple[str, str]:
    """(the demo's summary line, its stderr) for `demo` with `options`, run in tmp_path."""
    monkeypatch.chdir(tmp_path)
    status, out, err = run(["demo", "--cdk-out", str(cdk_out), *options], capsys)
    assert status == 0, err
    return out.strip().splitlines()[-1], err


def test_demo_summary_counts_injected_duplicates_and_sdk_retries(
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary, err = _demo_summary(
        cdk_out, tmp_path, monkeypatch, capsys, "--retry-delay", "0.01", "--seed", "5",
        "--dynamodb-error-rate", "0.3", "--duplicate-rate", "0.5",
    )  # fmt: skip
    assert "Injecting faults: dynamodb-error-rate 0.3, duplicate-rate 0.5 (seed 5)" in err
    assert " duplicates injected" in summary
    assert " DynamoDB errors injected" in summary
    assert " SDK retries" in summary


def test_a_configured_fault_is_counted_even_when_it_never_fired(
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Rates this low inject nothing in 8 events: the summary still says so, in zeros.
    summary, _ = _demo_summary(
        cdk_out, tmp_path, monkeypatch, capsys, "--seed", "1",
        "--dynamodb-error-rate", "0.0001", "--duplicate-rate", "0.0001",
    )  # fmt: skip
    assert "0 duplicates injected, 0 DynamoDB errors injected, " in summary
    # The SDK may still retry on its own (a slow answer on a loaded machine): counted too.
    assert re.search(r"injected, \d+ SDK retr(y|ies)\)$", summary), summary


def test_a_port_another_program_listens_on_is_one_line_naming_the_way_out(
    cdk_out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        status, _, err = run(["demo", "--cdk-out", str(cdk_out), "--port", str(port)], capsys)

    assert status == 1
    assert err.splitlines()[-1] == (
        f"sandbox: port {port} is in use by another program: choose another with --port, "
        "or --port 0 for a free one"
    )
    assert "Traceback" not in err
