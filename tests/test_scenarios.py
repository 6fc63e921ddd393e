"""The scenarios as data, and the model checked against what the host kernel showed
(tests/data/host-6.18.44/, recorded by ``mmlab live --record``). Runs anywhere: no live
kernel is needed to hold the model to the real one."""

import json
from pathlib import Path

import pytest

import mmlab
from mmlab import scenarios
from mmlab.live import compare, evidence

HOST_DIR = Path(__file__).parent / "data" / "host-6.18.44"
STORED = evidence.load(HOST_DIR)

@pytest.fixture(scope="module")
def model_records():
    return compare.predict(STORED, ["6.18.44"])["6.18.44"]


def test_every_scenario_has_a_stored_host_record():
    assert sorted(STORED) == sorted(scenarios.SCENARIOS)


@pytest.mark.parametrize("name", sorted(STORED))
def test_stored_records_say_which_kernel_and_when(name):
    stored = STORED[name]
    assert stored["kernel"].startswith("6.18.44")
    assert stored["recorded"][:4].isdigit() and stored["machine"]["thp"] in ("always", "madvise")
    assert stored["record"]["runs"] >= 2 and stored["record"]["unsettled"] == []


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_each_scenario_says_what_it_shows_and_records_plain_data(name, model_records):
    scenario = scenarios.get(name)
    assert scenario.shows.endswith(".") and len(scenario.shows) > 40
    record = model_records[name]
    assert json.loads(json.dumps(record)) == record
    assert all(step["label"] and step["call"] for step in record["steps"])


def test_the_recorded_baseline_matches_the_notes():
    """32 THPs: touch, MADV_FREE, MADV_PAGEOUT, as in the host experiments (course/sources.ipynb §7)."""
    steps = {s["label"]: s for s in STORED["lazyfree-reclaim"]["record"]["steps"]}
    assert steps["touch"]["vmstat"]["thp_fault_alloc"] == 32
    assert steps["touch"]["views"]["p"]["smaps"]["AnonHugePages"] == 65536
    assert steps["MADV_FREE"]["vmstat"]["pglazyfree"] == 16384
    assert steps["MADV_FREE"]["views"]["p"]["smaps"]["LazyFree"] == 65536
    assert "thp_split_pmd" not in steps["MADV_FREE"]["vmstat"]
    pageout = steps["MADV_PAGEOUT"]
    assert pageout["vmstat"]["pglazyfreed"] == 16384 and pageout["vmstat"]["thp_split_pmd"] == 32
    assert "thp_split_page" not in pageout["vmstat"] and pageout["views"]["p"]["smaps"]["Rss"] == 0
    locked = {s["label"]: s["outcome"] for s in STORED["mlock-then-free"]["record"]["steps"]}
    assert locked["MADV_FREE"] == locked["MADV_PAGEOUT"] == "EINVAL"


@pytest.mark.parametrize("name", sorted(STORED))
def test_the_model_agrees_with_the_host(name, model_records):
    host = STORED[name]["record"]
    assert [
        f"step {r.step} {r.label}: {r.path}: model {r.left!r}, host {r.right!r}"
        for r in compare.disagreements(model_records[name], host)
    ] == []


# Enough scenarios to tell every profile apart (``mmlab live`` runs them all).
DECIDING = ("lazyfree-reclaim", "lazyfree-rewrite", "pinned-lazyfree")


def test_the_fingerprint_of_the_recorded_host_is_6_18_44():
    host = {name: STORED[name]["record"] for name in DECIDING}
    fp = compare.fingerprint(host, compare.predict(DECIDING, mmlab.PROFILES))
    assert fp.profiles == ("6.18.44",)
    assert {d.scenario for d in fp.decisions} == set(DECIDING)
    groups = {d.scenario: d.groups for d in fp.decisions}
    assert ("6.18.44",) in groups["lazyfree-reclaim"].values()  # this one alone decides it
