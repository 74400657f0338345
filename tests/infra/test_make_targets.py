"""The Makefile's guards: `make nag` never reports a stale cdk.out, `make deploy` never
deploys the committed placeholder account. Each runs make against a stand-in CDK CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from config.settings import PLACEHOLDER_ACCOUNT, cdk_json_context, placeholder_problems
from tests.conftest import run_command

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ERROR = "Configuration error: context 'devStage.region': 'xx-moon-1' is not an AWS region"


def fake_cdk(tmp_path: Path, script: str) -> Path:
    """A stand-in for the CDK CLI that runs `script` (bash) instead of synthesizing."""
    path = tmp_path / "fake-cdk"
    path.write_text(f"#!/usr/bin/env bash\n{script}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def run_make(target: str, tmp_path: Path, cdk: Path) -> subprocess.CompletedProcess[str]:
    # In tmp_path, so the working tree's cdk.out is never touched; `install` is taken as
    # done (-o), the venv and the modules are the repository's.
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}
    return run_command(
        [
            shutil.which("make") or "make",
            "--no-print-directory",
            "-f",
            str(REPOSITORY_ROOT / "Makefile"),
            "-o",
            "install",
            target,
            f"CDK={cdk}",
            f"VENV={REPOSITORY_ROOT / '.venv'}",
        ],
        cwd=tmp_path,
        env=env,
    )


def stale_assembly(tmp_path: Path) -> None:
    # What a previous, successful synth left: a report without findings.
    (tmp_path / "cdk.out").mkdir()
    (tmp_path / "cdk.out" / "validation-report.json").write_text(
        json.dumps({"pluginReports": []}), encoding="utf-8"
    )


def test_make_nag_fails_with_the_synths_error_not_a_stale_report(tmp_path: Path) -> None:
    stale_assembly(tmp_path)
    result = run_make("nag", tmp_path, fake_cdk(tmp_path, f'echo "{CONFIG_ERROR}" >&2; exit 2'))
    assert result.returncode != 0
    assert CONFIG_ERROR in result.stderr
    assert "unacknowledged finding" not in result.stdout


def test_make_nag_lists_the_findings_of_a_synth_that_failed_on_them(tmp_path: Path) -> None:
    stale_assembly(tmp_path)
    report = {
        "pluginReports": [
            {
                "violations": [
                    {
                        "ruleName": "AwsSolutions-SQS3",
                        "description": "no DLQ",
                        "violatingConstructs": [{"constructPath": "Stack/Queue/Resource"}],
                    }
                ]
            }
        ]
    }
    cdk = fake_cdk(
        tmp_path,
        f"echo '{json.dumps(report)}' > cdk.out/validation-report.json; "
        "echo ValidationFailed >&2; exit 1",
    )
    result = run_make("nag", tmp_path, cdk)
    assert result.returncode != 0
    assert "AwsSolutions-SQS3  Stack/Queue/Resource" in result.stdout
    assert "1 unacknowledged finding(s)" in result.stdout


def test_make_nag_passes_a_clean_synth(tmp_path: Path) -> None:
    cdk = fake_cdk(
        tmp_path,
        "mkdir -p cdk.out; echo '{}' > cdk.out/validation-report.json; "
        """echo '{"artifacts": {}}' > cdk.out/manifest.json""",
    )
    result = run_make("nag", tmp_path, cdk)
    assert result.returncode == 0, result.stderr
    assert "0 unacknowledged finding(s)" in result.stdout
    assert "0 unacknowledged IAM policy finding(s)" in result.stdout


@pytest.mark.parametrize("target", ["deploy", "deploy-pipeline"])
def test_deploy_refuses_the_placeholder_account_and_says_how_to_set_yours(
    target: str, tmp_path: Path
) -> None:
    deployed = tmp_path / "deployed"
    result = run_make(target, tmp_path, fake_cdk(tmp_path, f"touch {deployed}"))
    assert result.returncode != 0
    assert f"is {PLACEHOLDER_ACCOUNT}, the placeholder committed in cdk.json" in result.stderr
    assert "set your 12-digit account id there" in result.stderr
    assert not deployed.exists()


def test_placeholder_check_names_every_placeholder_the_pipeline_would_deploy() -> None:
    problems = placeholder_problems(cdk_json_context(), pipeline=True)
    named = [problem.split(" ", 1)[0] for problem in problems]
    assert named == [
        "pipelineAccount",
        "stages[0].account",
        "stages[1].account",
        "githubConnectionArn",
    ]


def test_real_accounts_pass_the_placeholder_check() -> None:
    account = "123456789012"
    context = cdk_json_context()
    context["devStage"] = {**context["devStage"], "account": account}
    assert placeholder_problems(context, pipeline=False) == []
