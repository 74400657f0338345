"""BackgroundMirror: datums reach CloudWatch from a thread of its own, merged, none lost."""

from __future__ import annotations

import threading
from typing import Any

from sandbox.metrics import BackgroundMirror


def test_datums_are_sent_from_another_thread_merged_and_drained_before_close() -> None:
    calls: list[tuple[str, int, str]] = []
    release = threading.Event()

    def mirror(namespace: str, datums: list[dict[str, Any]]) -> None:
        release.wait(5)  # the first call blocks: what comes meanwhile must queue
        calls.append((namespace, len(datums), threading.current_thread().name))

    background = BackgroundMirror(mirror)
    background("AWS/S3", [{"MetricName": "PutRequests"}])
    for _ in range(5):
        background("AWS/Lambda", [{"MetricName": "Invocations"}] * 2)
    release.set()
    assert background.drain(timeout=5)
    background.close()

    assert sum(count for _, count, _ in calls) == 11
    # Queued while the first call was in flight: one call for the five batches.
    assert ("AWS/Lambda", 10, "sandbox-metrics-mirror") in calls
    assert all(name == "sandbox-metrics-mirror" for _, _, name in calls)


def test_a_failing_mirror_is_reported_and_the_thread_lives_on(capsys: Any) -> None:
    sent: list[int] = []

    def mirror(namespace: str, datums: list[dict[str, Any]]) -> None:
        if not sent:
            sent.append(0)
            raise ConnectionError("emulator gone")
        sent.append(len(datums))

    background = BackgroundMirror(mirror)
    background("AWS/Lambda", [{}])
    assert background.drain(timeout=5)
    background("AWS/Lambda", [{}, {}])
    assert background.drain(timeout=5)
    background.close()

    assert sent == [0, 2]
    assert "mirroring metrics to CloudWatch failed: ConnectionError" in capsys.readouterr().err
