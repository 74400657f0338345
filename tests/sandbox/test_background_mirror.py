"""BackgroundMirror: statistics reach CloudWatch from a thread of its own, merged, none lost."""

from __future__ import annotations

import threading
from typing import Any

from sandbox.metrics import Aggregates, BackgroundMirror, MetricStore

T0 = 1_700_000_040.0  # a minute boundary


def _invocations(store: MetricStore, count: int, *, at: float = T0) -> None:
    for n in range(count):
        store.put("AWS/Lambda", "Invocations", {"FunctionName": "f"}, 1.0, at + n % 50, "Count")
    store.flush()


def test_statistics_are_sent_from_another_thread_merged_and_drained_before_close() -> None:
    calls: list[tuple[Aggregates, str]] = []
    sending, release = threading.Event(), threading.Event()

    def mirror(aggregates: Aggregates) -> None:
        sending.set()
        release.wait(5)  # the first call blocks: what comes meanwhile must queue
        calls.append((aggregates, threading.current_thread().name))

    background = BackgroundMirror(mirror, window=0.0)
    store = MetricStore(mirror=background)
    _invocations(store, 1)
    assert sending.wait(5)
    for _ in range(5):
        _invocations(store, 2)
    release.set()
    assert background.drain(timeout=5)
    background.close()

    counts = [s.sample_count for aggregates, _ in calls for s in aggregates.values()]
    assert sum(counts) == 11
    # Queued while the first call was in flight: one statistic set for the five flushes.
    assert counts == [1.0, 10.0]
    assert all(name == "sandbox-metrics-mirror" for _, name in calls)


def test_a_window_merges_every_flush_of_a_series_minute_into_one_datum() -> None:
    calls: list[Aggregates] = []
    background = BackgroundMirror(calls.append, window=60.0)
    store = MetricStore(mirror=background)
    for _ in range(100):
        _invocations(store, 3)
    _invocations(store, 4, at=T0 + 60)  # the next minute is a datum of its own
    # drain sends at once: nobody waits for the window
    assert background.drain(timeout=5)
    background.close()

    ((aggregates),) = calls
    assert sorted((minute, s.sample_count) for (_, _, minute), s in aggregates.items()) == [
        (T0, 300.0),
        (T0 + 60, 4.0),
    ]


def test_close_sends_what_is_queued_without_waiting_for_the_window() -> None:
    calls: list[Aggregates] = []
    background = BackgroundMirror(calls.append, window=600.0)
    _invocations(MetricStore(mirror=background), 2)
    background.close()
    ((aggregates),) = calls
    assert [s.sample_count for s in aggregates.values()] == [2.0]


def test_a_failing_mirror_is_reported_and_the_thread_lives_on(capsys: Any) -> None:
    sent: list[float] = []

    def mirror(aggregates: Aggregates) -> None:
        if not sent:
            sent.append(0)
            raise ConnectionError("emulator gone")
        sent.extend(s.sample_count for s in aggregates.values())

    background = BackgroundMirror(mirror, window=0.0)
    store = MetricStore(mirror=background)
    _invocations(store, 1)
    assert background.drain(timeout=5)
    _invocations(store, 2)
    assert background.drain(timeout=5)
    background.close()

    assert sent == [0, 2.0]
    assert "mirroring metrics to CloudWatch failed: ConnectionError" in capsys.readouterr().err
