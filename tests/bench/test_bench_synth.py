"""The bench's synth section: the whole app's synth time next to a one-stack app's.

Apart from tests/bench/test_bench.py so that the two long runs (jsii-heavy synths here, the
other sections there) go to different pytest workers. No timing is asserted.
"""

from __future__ import annotations

from bench.settings import QUICK
from bench.synth import measure_synth
from tests.bench.test_bench import is_sane


def test_synth_time_is_compared_with_a_minimal_app() -> None:
    synth = measure_synth(QUICK)
    assert synth["repeats"] == QUICK.synth_repeats
    for key in ("app_ms", "minimal_app_ms", "ratio"):
        assert is_sane(synth[key])
