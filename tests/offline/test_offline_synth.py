"""Offline means offline: `make synth` opens no connection beyond 127.0.0.1.

Every Node process (the CDK CLI, its detached telemetry sender, jsii's runtime) and every
Python process (the CDK app) of the command is audited: audit_connections.js is preloaded
into Node (NODE_OPTIONS=--require) and sitecustomize.py installs a Python audit hook
(PEP 578). Both record each connection and refuse the ones that would leave the machine.
The CLI caches "no connectivity" in its home for an hour, so each run gets a fresh
CDK_HOME: a cached answer must not hide an attempt.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_command

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
AUDIT_DIR = Path(__file__).resolve().parent
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# A detached sender may outlive the command; wait this long for the last one to exit.
STRAGGLER_TIMEOUT_SECONDS = 30


def audited_env(tmp_path: Path) -> dict[str, str]:
    """The environment of an audited command: each record goes to tmp_path/connections."""
    env = dict(os.environ)
    env["CONNECTION_AUDIT_LOG"] = str(tmp_path / "connections.jsonl")
    env["CDK_HOME"] = str(tmp_path / "cdk-home")
    # Credentials in the environment, as on a developer's laptop or in CodeBuild: with
    # them the CLI would ask STS for the default account.
    env.update(AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="example")
    preload = f"--require {AUDIT_DIR / 'audit_connections.js'}"
    env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} {preload}".strip()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(AUDIT_DIR), env.get("PYTHONPATH")]))
    return env


def wait_for_audited_processes(log: str) -> None:
    """Waits until no process carrying this audit log (a detached sender...) still runs."""
    marker = f"CONNECTION_AUDIT_LOG={log}".encode()
    deadline = time.monotonic() + STRAGGLER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not any(marker in _environ(proc) for proc in Path("/proc").glob("[0-9]*")):
            return
        time.sleep(0.5)
    pytest.fail(f"audited processes still running after {STRAGGLER_TIMEOUT_SECONDS} s")


def _environ(proc: Path) -> bytes:
    try:
        return (proc / "environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def run_audited(command: list[str], tmp_path: Path, timeout: int) -> list[dict[str, Any]]:
    env = audited_env(tmp_path)
    completed = run_command(command, env=env, timeout=timeout)
    wait_for_audited_processes(env["CONNECTION_AUDIT_LOG"])
    assert completed.returncode == 0, completed.stderr[-3000:]
    log = Path(env["CONNECTION_AUDIT_LOG"])
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def leaving_the_machine(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        record
        for record in records
        if (record["kind"] == "lookup" and record["target"] not in LOOPBACK)
        or (record["kind"] == "connect" and record["target"].rsplit(":", 1)[0] not in LOOPBACK)
    ]


def test_the_audit_sees_what_node_and_python_try(tmp_path: Path) -> None:
    # The audit itself: without it, an empty record would prove nothing.
    script = (
        "fetch('https://example.com').catch(() => {});"
        "require('child_process').execFileSync(process.argv[1], ['-c', "
        '\'import socket\\ntry: socket.create_connection(("192.0.2.1", 443), 1)\\n'
        "except OSError: pass'])"
    )
    records = run_audited(
        [
            shutil.which("node") or "node",
            "-e",
            script,
            str(REPOSITORY_ROOT / ".venv" / "bin" / "python"),
        ],
        tmp_path,
        60,
    )
    targets = {record["target"] for record in leaving_the_machine(records)}
    assert {"example.com:443", "192.0.2.1:443"} <= targets


@pytest.mark.timeout(900)  # a whole synth through the CLI, on a shared 2-core machine
def test_make_synth_opens_no_connection_beyond_loopback(tmp_path: Path) -> None:
    cdk = f"node_modules/.bin/cdk -o {tmp_path / 'cdk.out'}"
    records = run_audited([shutil.which("make") or "make", "synth", f"CDK={cdk}"], tmp_path, 900)
    runtimes = {record["runtime"] for record in records if record["kind"] == "loaded"}
    assert runtimes == {"node", "python"}, "the CLI or the app ran without the audit"
    assert (tmp_path / "cdk.out" / "manifest.json").exists()
    assert leaving_the_machine(records) == []


def test_the_app_command_in_cdk_json_prints_no_node_end_of_life_banner(tmp_path: Path) -> None:
    # `npx cdk synth` outside make: jsii's Node 20 end-of-life banner came out as Python
    # bytes literals (b'!!!...'). cdk.json's app command runs with Node 20 accepted.
    app = json.loads((REPOSITORY_ROOT / "cdk.json").read_text(encoding="utf-8"))["app"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE_WARNING")}
    env["CDK_OUTDIR"] = str(tmp_path)
    # The committed app command, through sh as the CLI runs it.
    completed = run_command([shutil.which("sh") or "sh", "-c", app], env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "b'" not in completed.stderr
    assert "end-of-life" not in completed.stderr.lower().replace(" ", "-")
