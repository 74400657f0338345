"""`python -m bench` refuses bad arguments before measuring anything, and shows progress."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
import contract
from bench.__main__ import _burst, _parse_args, _section
from bench.settings import QUICK
from sandbox.template import TemplateError

REPO_ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own interpreter and module, no shell
        [sys.executable, "-m", "bench", "--quick", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--output", "/"), "'/' is a directory: give a file name in it"),
        (("--output", "/proc/no-such-folder/x.json"), "can't make the folder"),
        (("--cdk-out", "/no-such-cdk-out"), "/no-such-cdk-out has no manifest.json"),
    ],
)
def test_a_bad_path_is_one_line_before_any_measurement(args: tuple[str, ...], says: str) -> None:
    completed = bench(*args)
    assert completed.returncode == 2
    assert completed.stdout == ""
    (last,) = [line for line in completed.stderr.splitlines() if "error:" in line]
    assert says in last
    assert "Traceback" not in completed.stderr
    assert "bench: warm cost" not in completed.stderr  # nothing was measured


STACK_MANIFEST = {
    "version": "36.0.0",
    "artifacts": {
        "Service": {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": "Service.template.json"},
        }
    },
}
FUNCTION = {"Type": "AWS::Lambda::Function", "Properties": {"Handler": contract.HANDLER_ENTRY}}
NOTIFIED_FUNCTION = {
    "Function": FUNCTION,
    "Bucket": {"Type": "AWS::S3::Bucket"},
    "Notifications": {
        "Type": "Custom::S3BucketNotifications",
        "Properties": {
            "BucketName": {"Ref": "Bucket"},
            "NotificationConfiguration": {
                "LambdaFunctionConfigurations": [
                    {"Events": ["s3:ObjectCreated:*"], "LambdaFunctionArn": {"Ref": "Function"}}
                ]
            },
        },
    },
}
WITH_ASSET = {
    **NOTIFIED_FUNCTION,
    "Function": {**FUNCTION, "Metadata": {"aws:asset:path": "asset.code"}},
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# Each way a --cdk-out can be unusable for the sandbox burst: (manifest.json, the stack's
# template, what the one line must name). None: the file is not there.
UNUSABLE_CDK_OUT: dict[str, tuple[Any, Any, str]] = {
    "manifest missing": (None, None, "has no manifest.json"),
    "manifest truncated": ("{", None, "manifest.json is not valid JSON"),
    "manifest not an object": ("[]", None, "manifest.json holds no JSON object"),
    "artifacts not an object": ({"artifacts": []}, None, "(AttributeError"),
    "stack without its templateFile": (
        {"artifacts": {"Service": {"type": "aws:cloudformation:stack", "properties": {}}}},
        None,
        "(KeyError: 'templateFile')",
    ),
    "nested assembly is itself": (
        {"artifacts": {"A": {"type": "cdk:cloud-assembly", "properties": {"directoryName": "."}}}},
        None,
        "the nested assembly A is this assembly or one around it",
    ),
    "no stack at all": ({"version": "36.0.0", "artifacts": {}}, None, "no stack in"),
    "template missing": (STACK_MANIFEST, None, "Service.template.json is missing"),
    "template truncated": (STACK_MANIFEST, "{", "Service.template.json is not valid JSON"),
    "template without Resources": (STACK_MANIFEST, {}, "has no Resources"),
    "resource not an object": (STACK_MANIFEST, {"Resources": {"Function": []}}, "(AttributeError"),
    "no ledger function": (
        STACK_MANIFEST,
        {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}},
        "has a Lambda function with handler",
    ),
    "no notification invokes the function": (
        STACK_MANIFEST,
        {"Resources": {"Function": FUNCTION}},
        "no S3 bucket notification invokes function Function",
    ),
    "function without its asset metadata": (
        STACK_MANIFEST,
        {"Resources": NOTIFIED_FUNCTION},
        "has no aws:asset:path metadata",
    ),
    "asset without the handler package": (
        STACK_MANIFEST,
        {"Resources": WITH_ASSET},
        f"has no {contract.HANDLER_PACKAGE}/",
    ),
}


@pytest.mark.parametrize(
    ("manifest", "template", "says"), UNUSABLE_CDK_OUT.values(), ids=list(UNUSABLE_CDK_OUT)
)
def test_a_cdk_out_the_sandbox_cannot_deploy_is_one_line_before_any_section(
    tmp_path: Path, manifest: Any, template: Any, says: str
) -> None:
    # The sandbox's own loader judges it: the line is the sandbox's, and nothing is measured.
    if manifest is not None:
        (tmp_path / "manifest.json").write_text(_text(manifest), encoding="utf-8")
    if template is not None:
        (tmp_path / "Service.template.json").write_text(_text(template), encoding="utf-8")
    (tmp_path / "asset.code").mkdir()
    completed = bench("--skip-synth", "--cdk-out", str(tmp_path))
    assert completed.returncode == 2
    assert completed.stdout == ""
    (line,) = completed.stderr.splitlines()  # so no section's "bench: ..." line either
    assert line.startswith("python -m bench: error: argument --cdk-out: ")
    assert says in line
    assert "make synth" in line
    assert "--skip-burst" in line
    assert "Traceback" not in completed.stderr


def test_a_template_error_in_the_burst_section_is_kept_as_its_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What only deploying shows (a reference the sandbox can't resolve): not a traceback
    # that loses the other sections' figures.
    def refuse(*_: Any) -> dict[str, Any]:
        raise TemplateError("Notifications: the sandbox can't resolve Elsewhere")

    monkeypatch.setattr(bench_main, "measure_burst", refuse)
    args = _parse_args(["--skip-burst"])
    args.skip_burst = False
    assert _burst(args, QUICK) == {
        "failed": "argument --cdk-out: Notifications: the sandbox can't resolve Elsewhere"
    }


def test_a_failed_burst_still_writes_the_results_then_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {"burst": {"failed": "argument --cdk-out: cannot deploy"}}
    monkeypatch.setattr(bench_main, "run", lambda _: results)
    monkeypatch.setattr(bench_main, "render", lambda _: "the table")
    output = tmp_path / "results.json"
    assert bench_main.main(["--skip-burst", "--output", str(output)]) == 2
    assert json.loads(output.read_text(encoding="utf-8")) == results
    assert capsys.readouterr().err == "python -m bench: error: argument --cdk-out: cannot deploy\n"


def test_a_quick_run_leaves_the_real_results_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_main, "DEFAULT_OUTPUT", tmp_path / "latest.json")
    monkeypatch.setattr(bench_main, "QUICK_OUTPUT", tmp_path / "quick.json")
    assert _parse_args(["--skip-burst"]).output == tmp_path / "latest.json"
    assert _parse_args(["--quick", "--skip-burst"]).output == tmp_path / "quick.json"
    # --output, when given, is where it writes, --quick or not.
    chosen = ["--quick", "--skip-burst", "--output", str(tmp_path / "mine.json")]
    assert _parse_args(chosen).output == tmp_path / "mine.json"


def test_without_the_burst_no_synthesized_app_is_needed(tmp_path: Path) -> None:
    # --skip-burst: the one section that reads cdk.out is left out, so its absence is fine.
    args = _parse_args(["--skip-burst", "--cdk-out", str(tmp_path), "--output", "x.json"])
    assert args.skip_burst


def test_a_running_section_says_so_every_interval(capsys: pytest.CaptureFixture[str]) -> None:
    with _section("a slow section", interval=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "bench: a slow section..."
    assert sum(line.startswith("... a slow section: still running") for line in lines) >= 3
    assert lines[-1].strip().startswith("done in ")


def test_the_default_output_folder_is_made_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh clone has no bench-results/: the JSON must still have somewhere to go.
    monkeypatch.setattr(bench_main, "DEFAULT_OUTPUT", tmp_path / "bench-results" / "latest.json")
    args = _parse_args(["--skip-burst"])
    assert args.output == tmp_path / "bench-results" / "latest.json"
    assert args.output.parent.is_dir()
