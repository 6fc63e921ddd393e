"""Every scenario, run on this machine's kernel, against the model profile this kernel
behaves like, as ``mmlab live`` finds it: whatever the kernel's release or build, the host
is fingerprinted against every profile (the scenarios that tell profiles apart), and each
scenario's every judged field must then agree with the matching profile's prediction.
Skipped, with the reason, without Linux, THP and root, or without what a scenario needs
(MADV_PAGEOUT, no swap, ...).

The records stored in tests/data/host-6.18.44/ are compared with the model everywhere,
live kernel or not (tests/test_scenarios.py).
"""

import pytest

from mmlab import scenarios
from mmlab.kernels import PROFILES
from mmlab.live import Machine, compare, probe

pytestmark = pytest.mark.live


def lacking(env, name: str) -> str | None:
    """Why this machine cannot run scenario ``name``, or None."""
    return next((r for r in map(env.lacking, scenarios.get(name).needs) if r), None)


@pytest.fixture(scope="module")
def host():
    """This kernel's records of every scenario it can run (two runs merged, as ``mmlab
    live`` does), every profile's predictions, and the fingerprint."""
    env = probe()
    records = {name: scenarios.record(name, Machine, runs=2) for name in scenarios.SCENARIOS
               if lacking(env, name) is None}
    predictions = compare.predict(records, PROFILES, env)
    return env, records, predictions, compare.fingerprint(records, predictions)


def test_the_kernel_behaves_like_one_of_the_models_profiles(host):
    env, _, _, fingerprint = host
    deciding = {d.scenario: {", ".join(p): v for v, p in d.groups.items()} | {"host": d.host}
                for d in fingerprint.decisions if not d.matches}
    assert fingerprint.profiles, f"Linux {env.release} behaves like no model profile; scenarios: {deciding}"


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_the_host_agrees_with_its_matching_profile_field_by_field(host, name):
    env, records, predictions, fingerprint = host
    reason = lacking(env, name)
    if reason:
        pytest.skip(reason)
    if not fingerprint.profiles:
        pytest.fail(f"Linux {env.release} matches no profile (see the fingerprint test)", pytrace=False)
    profile = fingerprint.profiles[-1]  # the newest of those that match: they predict alike
    live = records[name]
    if compare.disagreements(predictions[profile][name], live):  # a noisy run: outvote it
        live = scenarios.record(name, Machine, runs=3)
    assert [
        f"step {r.step} {r.label}: {r.path}: model {profile} {r.left!r}, Linux {env.release} {r.right!r}"
        for r in compare.disagreements(predictions[profile][name], live)
    ] == []
