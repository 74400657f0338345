"""The release drill end to end: real uploads, the real handler and hook, alarms from cdk.out."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from sandbox import Sandbox
from sandbox.drill.fault import Fault
from sandbox.drill.rehearsal import NEW, DrillOptions, DrillResult, Rehearsal
from sandbox.metrics import MetricStore
from sandbox.outbox import read_outbox

pytestmark = pytest.mark.e2e
# 40 uploads a minute: the 10% canary gets about 4 a minute, enough for the error-rate gate.
TRAFFIC = 40.0


def rehearse(
    sandbox: Sandbox,
    tmp_path: Path,
    fault: str = "",
    *,
    cdk_out: Path,
    model: bool = False,
) -> DrillResult:
    # The session's own synthesized assembly (the sandbox's), never the working tree's
    # cdk.out, which a fresh clone does not have.
    options = DrillOptions(fault=Fault.parse(fault), uploads_per_minute=TRAFFIC, model=model)
    rehearsal = Rehearsal(cdk_out, options, tmp_path / "outbox", tmp_path / "work")
    return rehearsal.run(sandbox)


def test_broken_version_rolls_back_before_100_percent_and_the_alarm_mail_names_the_runbook(
    drill_sandbox: Sandbox, cdk_out: Path, tmp_path: Path
) -> None:
    # Fails every real upload, while the hook's health-check key passes.
    result = rehearse(drill_sandbox, tmp_path, "keys:uploads/*", cdk_out=cdk_out)

    assert result.outcome == "rollback"
    assert result.state == "Stopped"
    assert "canary-error-rate" in result.cause
    assert max(row["weight"] for row in result.rows) < 100
    assert result.rows[-1]["weight"] == 0  # the alias ends on version 1
    assert result.rows[-1]["versions"][NEW]["invocations"] == 0
    messages = list(read_outbox(tmp_path / "outbox"))
    alarms = [json.loads(m["Message"]) for m in messages if m["Source"] == "cloudwatch"]
    gate = [a for a in alarms if a["AlarmName"].endswith("canary-error-rate")]
    assert gate[0]["NewStateValue"] == "ALARM"
    assert gate[0]["OldStateValue"] == "OK"
    assert "runbooks/canary-error-rate.md" in gate[0]["AlarmDescription"]
    assert gate[0]["NewStateReason"].startswith("Threshold Crossed: ")
    assert gate[0]["Trigger"]["Metrics"][0]["Expression"].startswith("IF(errors")
    stopped = [m for m in messages if m["Source"] == "eventbridge"]
    assert "ended in STOP" in stopped[0]["Message"]
    assert "runbooks/deployment-rolled-back.md" in stopped[0]["Message"]
    assert messages[0]["Subject"].startswith("ALARM: ")


def test_clean_version_completes(drill_sandbox: Sandbox, cdk_out: Path, tmp_path: Path) -> None:
    result = rehearse(drill_sandbox, tmp_path, cdk_out=cdk_out)

    assert result.outcome == "success"
    assert result.state == "Succeeded"
    assert result.rows[-1]["weight"] == 100
    assert result.errors == {"1": 0, "2": 0}
    assert result.invocations[NEW] > 0
    assert not any(m["Source"] == "eventbridge" for m in read_outbox(tmp_path / "outbox"))


def test_a_version_failing_the_hook_never_takes_traffic(
    drill_sandbox: Sandbox, cdk_out: Path, tmp_path: Path
) -> None:
    result = rehearse(drill_sandbox, tmp_path, "errors:1.0", cdk_out=cdk_out)

    assert result.outcome == "rollback"
    assert result.state == "Failed"
    assert "pre-traffic hook" in result.cause
    assert result.invocations[NEW] == 0
    assert all(row["weight"] == 0 for row in result.rows)
    (failed,) = [m for m in read_outbox(tmp_path / "outbox") if m["Source"] == "eventbridge"]
    assert "ended in FAILURE" in failed["Message"]


def test_the_verdict_follows_the_threshold_in_the_template(
    drill_sandbox: Sandbox, cdk_out: Path, tmp_path: Path
) -> None:
    # The same broken release passes once the template's error-rate thresholds (the alias's
    # and the new version's) are unreachable: the drill reads its gate from cdk.out.
    changed = tmp_path / "cdk.out"
    shutil.copytree(cdk_out, changed)
    (template,) = [p for p in changed.glob("assembly-*-dev/*.template.json") if "Service" in p.name]
    document = json.loads(template.read_text())
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"][
            "AlarmName"
        ].endswith("error-rate"):
            resource["Properties"]["Threshold"] = 1000
    template.write_text(json.dumps(document))

    before = rehearse(
        drill_sandbox, tmp_path / "before", "keys:uploads/*", model=True, cdk_out=cdk_out
    )
    after = rehearse(
        drill_sandbox, tmp_path / "after", "keys:uploads/*", model=True, cdk_out=changed
    )

    assert before.outcome == "rollback"
    assert after.outcome == "success"


def test_each_drill_starts_with_its_own_empty_outbox(
    drill_sandbox: Sandbox, cdk_out: Path, tmp_path: Path
) -> None:
    # Two drills into the same outbox: the second's snapshot and console list only its own
    # messages, numbered from 0001 (before, the first drill's e-mails stayed beside them).
    rehearse(drill_sandbox, tmp_path, "keys:uploads/*", model=True, cdk_out=cdk_out)
    second = rehearse(drill_sandbox, tmp_path, "errors:1.0", model=True, cdk_out=cdk_out)

    files = sorted((tmp_path / "outbox").iterdir())
    messages = list(read_outbox(tmp_path / "outbox"))
    assert [m["MessageId"] for m in messages] == [n.message_id for n in second.notifications]
    assert [f.name.split("-")[1] for f in files] == [f"{n:04d}" for n in range(1, len(files) + 1)]


def test_a_simulated_clock_stamps_each_upload_with_the_minute_it_was_made(
    drill_sandbox: Sandbox,
) -> None:
    # moto runs in its own process and its requests reach the metrics over a pipe: moving
    # the clock right after an upload returns must not restamp that upload's PutRequests.
    drill_sandbox.metrics = MetricStore()
    minute = time.time() // 60 * 60 - 3600
    clock = {"now": minute}
    drill_sandbox.use_clock(lambda: clock["now"])
    for n in range(3):
        clock["now"] = minute + 60 * n
        drill_sandbox.upload(f"clock/{n}.txt", b"x")
    clock["now"] = minute + 600

    points = drill_sandbox.metrics.statistic(
        "AWS/S3",
        "PutRequests",
        {"BucketName": drill_sandbox.bucket_name, "FilterId": "EntireBucket"},
        "Sum",
        60,
        minute,
        minute + 600,
    )
    assert [(when - minute, value) for when, value in points] == [(0, 1), (60, 1), (120, 1)]
