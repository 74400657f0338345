"""The outbox holds one drill's messages, numbered uniquely within it."""

from __future__ import annotations

from pathlib import Path

from sandbox.outbox import CLOUDWATCH, EVENTBRIDGE, Outbox, read_outbox

TOPIC = "arn:aws:sns:eu-central-1:123456789012:alarms"
NOON = 1_795_000_000.0  # any simulated second: every message of both runs shares it


def send(outbox: Outbox, message: str, source: str = CLOUDWATCH) -> Path:
    return outbox.send(TOPIC, message, subject=None, timestamp=NOON, source=source)


def test_a_new_run_clears_the_last_runs_messages_and_numbers_its_own_from_one(
    tmp_path: Path,
) -> None:
    earlier = Outbox(tmp_path)
    for n in range(3):
        send(earlier, f"earlier {n}", EVENTBRIDGE if n else CLOUDWATCH)
    kept = tmp_path / "notes.txt"  # not a message: a chosen --outbox folder keeps it
    kept.write_text("mine\n", encoding="utf-8")

    current = Outbox(tmp_path)
    assert current.clear() == 3
    paths = [send(current, "current 1"), send(current, "current 2", EVENTBRIDGE)]

    assert [m["Message"] for m in read_outbox(tmp_path)] == ["current 1", "current 2"]
    sequences = [p.name.split("-")[1] for p in paths]
    assert sequences == ["0001", "0002"]
    assert kept.read_text(encoding="utf-8") == "mine\n"


def test_clearing_an_outbox_that_does_not_exist_yet_removes_nothing(tmp_path: Path) -> None:
    assert Outbox(tmp_path / "outbox").clear() == 0
