"""Every scenario, run on this machine's kernel, against the observations stored in
tests/data/host-6.18.44/. Skipped, with the reason, on another kernel release, without
what a scenario needs (THP, MADV_PAGEOUT, no swap, ...), or without Linux and root."""

from pathlib import Path

import pytest

from mmlab import scenarios
from mmlab.live import Machine, compare, evidence, probe

pytestmark = pytest.mark.live
STORED = evidence.load(Path(__file__).parent / "data" / "host-6.18.44")


@pytest.mark.parametrize("name", sorted(STORED))
def test_the_host_still_behaves_as_recorded(name):
    stored = STORED[name]
    env = probe()
    if env.release != stored["kernel"]:
        pytest.skip(f"recorded on {stored['kernel']}; this machine runs {env.release}")
    reason = next((r for r in map(env.lacking, scenarios.get(name).needs) if r), None)
    if reason:
        pytest.skip(reason)
    live = scenarios.record(name, Machine)
    if compare.disagreements(stored["record"], live):  # a noisy run: outvote it
        live = scenarios.record(name, Machine, runs=3)
    assert [
        f"step {r.step} {r.label}: {r.path}: recorded {r.left!r}, now {r.right!r}"
        for r in compare.disagreements(stored["record"], live)
    ] == []
