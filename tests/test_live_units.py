"""The live lab's pure parts, on any machine: /proc parsing, page summaries, how records are
judged, merged and compared, the fingerprint's decision, the environment lines, the timing
report and the command's argument checks. Nothing here touches the host kernel."""

import pytest

from mmlab import scenarios
from mmlab.app import cli
from mmlab.live import Machine, compare, env, procfs, timing
from mmlab.proc import PageInfo

SMAPS = """\
7f0000000000-7f0000400000 rw-p 00000000 00:00 0
Size:               4096 kB
Rss:                2048 kB
LazyFree:           2048 kB
AnonHugePages:      2048 kB
THPeligible:        1
VmFlags: rd wr mr mw me ac hg
7f0000401000-7f0000402000 ---p 00000000 00:00 0
Size:                  4 kB
Rss:                   0 kB
VmFlags: mr mw me
"""


def test_parse_smaps_reads_fields_flags_and_keeps_only_requested_ranges():
    smaps = procfs.parse_smaps(SMAPS)
    assert [(v.start, v.end, v.perms) for v in smaps.vmas] == [
        (0x7F0000000000, 0x7F0000400000, "rw-p"),
        (0x7F0000401000, 0x7F0000402000, "---p"),
    ]
    assert smaps.vmas[0].flags[-1] == "hg"
    assert smaps["LazyFree"] == 2048 and smaps["Size"] == 4100
    kept = procfs.parse_smaps(SMAPS, keep=[(0x7F0000000000, 0x7F0000001000)])
    assert len(kept.vmas) == 1 and kept["Size"] == 4096


def test_read_vmstat_marks_counters_the_kernel_lacks_as_none(tmp_path):
    path = tmp_path / "vmstat"
    path.write_text("thp_split_pmd 7\npglazyfree 3\nsomething_else 1\n")
    stats = procfs.read_vmstat(str(path))
    assert stats["thp_split_pmd"] == 7 and stats["pglazyfree"] == 3
    assert stats["pglazyfreed"] is None


def test_runs_groups_consecutive_pfns():
    assert procfs._runs([5, 3, 4, 9, 4, 10]) == [(3, 3), (9, 2)]


def test_summarize_pages_counts_flags_and_blanks_what_is_unreadable():
    pages = [
        PageInfo(0, True, pfn=1, thp=True, pmd_mapped=True, zero_page=False, dirty=True, swapbacked=False,
                 mlocked=False, unevictable=False, lru=True, active=False, anon=True, mapcount=1),
        PageInfo(4096, True, pfn=2, thp=True, pmd_mapped=True, zero_page=False, dirty=False, swapbacked=False,
                 mlocked=False, unevictable=False, lru=True, active=False, anon=True, mapcount=2),
        PageInfo(8192, False),
    ]  # fmt: skip
    summary = scenarios.summarize_pages(pages)
    assert summary["present"] == 2 and summary["dirty"] == 1 and summary["thp"] == 2
    assert summary["mapcount"] == {"1": 1, "2": 1}
    unreadable = scenarios.summarize_pages([PageInfo(0, True, pmd_mapped=True)])
    assert unreadable["pmd_mapped"] == 1 and unreadable["dirty"] is None and unreadable["mapcount"] is None


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("vmstat.thp_split_pmd", "exact"),
        ("vmstat.unevictable_pgs_mlocked", "tolerant"),
        ("vmstat.pgfault", "shown"),
        ("p.smaps.Referenced", "shown"),
        ("p.smaps.Rss", "exact"),
        ("c.pages.mapcount.2", "exact"),
        ("outcome", "exact"),
    ],
)
def test_judgement(path, kind):
    assert scenarios.judgement(path) == kind


def _record(split=32, pgfault=10, mlocked=0, thp_map="--", dirty=0, name="s"):
    view = {"smaps": {"Rss": 0}, "thp_map": thp_map, "pages": {"present": 0, "dirty": dirty, "mapcount": {}}}
    step = {
        "label": "MADV_PAGEOUT",
        "call": "madvise(a, 64 MiB, MADV_PAGEOUT)",
        "outcome": None,
        "value": None,
        "vmstat": {"thp_split_pmd": split, "pgfault": pgfault, "unevictable_pgs_mlocked": mlocked},
        "views": {"p": view},
    }
    return {"scenario": name, "shows": "", "kernel": "k", "steps": [step]}


def test_merge_outvotes_a_disturbed_run_and_reports_it():
    merged = scenarios.merge([_record(split=32), _record(split=33), _record(split=32)])
    assert merged["steps"][0]["vmstat"]["thp_split_pmd"] == 32
    assert merged["runs"] == 3
    assert merged["unsettled"] == ["MADV_PAGEOUT: vmstat.thp_split_pmd [32, 33, 32]"]


def test_merge_ignores_noise_in_shown_and_within_tolerance():
    merged = scenarios.merge([_record(pgfault=1, mlocked=0), _record(pgfault=900, mlocked=12)])
    assert merged["unsettled"] == []


def test_steps_agree_uses_tolerance_only_where_allowed():
    assert scenarios.steps_agree(_record(mlocked=0, pgfault=1), _record(mlocked=40, pgfault=5000))
    assert not scenarios.steps_agree(_record(mlocked=0), _record(mlocked=512))
    assert not scenarios.steps_agree(_record(split=32), _record(split=0))


def test_compare_gives_a_verdict_per_field():
    rows = {r.path: r for r in compare.compare(_record(split=0, thp_map="Z-"), _record(split=32))}
    assert rows["vmstat.thp_split_pmd"].verdict == compare.DIFFER
    assert (rows["vmstat.thp_split_pmd"].left, rows["vmstat.thp_split_pmd"].right) == (0, 32)
    assert rows["p.thp_map"].verdict == compare.DIFFER
    assert rows["vmstat.pgfault"].verdict == compare.SHOWN
    assert rows["p.smaps.Rss"].verdict == compare.AGREE
    blank = compare.compare(_record(dirty=None), _record(dirty=3))
    assert next(r for r in blank if r.path == "p.pages.dirty").verdict == compare.UNAVAILABLE


def test_what_one_side_cannot_read_is_unavailable_not_a_difference():
    model = _record(thp_map="HT")
    model["steps"][0]["views"]["p"]["pages"]["mapcount"] = {"1": 512}
    host = _record(thp_map="H?")
    host["steps"][0]["views"]["p"]["pages"]["mapcount"] = None  # not root
    rows = {r.path: r.verdict for r in compare.compare(model, host)}
    assert rows["p.thp_map"] == rows["p.pages.mapcount.1"] == compare.UNAVAILABLE
    assert compare.compare(_record(thp_map="HH"), _record(thp_map="s?"))[-1].verdict == compare.DIFFER


def test_an_outcome_of_none_means_success_and_is_compared():
    failed = _record()
    failed["steps"][0]["outcome"] = "EINVAL"
    rows = {r.path: r.verdict for r in compare.compare(_record(), failed)}
    assert rows["outcome"] == compare.DIFFER


def test_compare_refuses_different_scenarios():
    with pytest.raises(ValueError, match="cannot compare"):
        compare.compare(_record(name="a"), _record(name="b"))


def test_decide_groups_profiles_by_what_they_predict_and_places_the_host():
    predictions = {"old": _record(split=32), "mid": _record(split=0, thp_map="Z-"), "new": _record(split=32)}
    decision = compare.decide("s", predictions, _record(split=32, pgfault=77))
    assert decision.fields == (("MADV_PAGEOUT", "vmstat.thp_split_pmd"), ("MADV_PAGEOUT", "p.thp_map"))
    assert decision.groups == {(32, "--"): ("old", "new"), (0, "Z-"): ("mid",)}
    assert decision.matches == ("old", "new")


def test_fingerprint_intersects_the_deciding_scenarios():
    predictions = {
        "old": {"a": _record(split=32, name="a"), "b": _record(dirty=1, name="b")},
        "new": {"a": _record(split=32, name="a"), "b": _record(dirty=0, name="b")},
        "mid": {"a": _record(split=0, name="a"), "b": _record(dirty=0, name="b")},
    }
    host = {"a": _record(split=32, name="a"), "b": _record(dirty=0, name="b")}
    fp = compare.fingerprint(host, predictions)
    assert fp.profiles == ("new",)
    assert [d.scenario for d in fp.decisions] == ["a", "b"]
    assert fp.agreement["mid"] == {"a": 1, "b": 0}


def test_environment_lines():
    mac = env.Environment("Darwin")
    assert mac.lacking("thp").startswith("not Linux (Darwin)")
    box = env.Environment("Linux", "5.3.0", thp="never", swap_kb=2048, root=False, pagemap_scan=False,
                          pageout=False, cold=False, memlock_bytes=64 << 10)  # fmt: skip
    assert "'never'" in box.lacking("thp")
    assert "no MADV_PAGEOUT" in box.lacking("pageout")
    assert "RLIMIT_MEMLOCK is 64 KiB" in box.lacking("mlock")
    assert "2 MiB of swap" in box.lacking("no_swap")
    problems = box.problems()
    assert any(line.startswith("not root") for line in problems)
    assert any("PAGEMAP_SCAN" in line for line in problems)
    assert all("\n" not in line for line in problems)
    fine = env.Environment("Linux", "6.18.44", thp="madvise", huge_zero_page=True, swap_kb=0, root=True,
                           pagemap_scan=True, pageout=True, cold=True)  # fmt: skip
    assert fine.problems() == []


def test_the_live_machine_says_in_one_line_why_it_cannot_run(monkeypatch):
    monkeypatch.setattr(env, "probe", lambda: env.Environment("Darwin"))
    with pytest.raises(env.LiveUnavailable, match=r"^not Linux \(Darwin\): the live lab makes Linux syscalls"):
        Machine()


def test_timing_report_sets_the_medians_beside_the_series():
    size, freed = 1 << 30, [{"pglazyfreed": (1 << 30) // 4096}] * 3
    timings = [
        timing.Timing(timing.CASES[0].name, size, [0.012, 0.025, 0.014], [0.012, 0.013, 0.014], freed),
        timing.Timing(timing.CASES[1].name, size, [0.20, 0.41, 0.40], [0.20, 0.21, 0.26], freed),
        timing.Timing(timing.CASES[2].name, size, [0.003, 0.003, 0.004], [0.003, 0.003, 0.004], [{}] * 3),
    ]
    text = "\n".join(timing.report(timings))
    assert "median    14.00 ms wall,    13.00 ms CPU" in text
    assert "0.683 s -> new 0.049 s" in text
    assert "16.2x faster than the same memory as 4 KiB folios" in text  # from CPU time: 0.21 / 0.013
    assert "4.3x that" in text


def test_timing_flags_a_run_that_did_not_free_everything():
    t = timing.Timing(timing.CASES[0].name, 4 << 20, [0.001], [0.001], [{"pglazyfreed": 512}])
    assert not t.complete


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["live", "--profile", "9.9"], "unknown profile '9.9'"),
        (["live", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["live", "--timing-mib", "2048"], "at most 1 GiB"),
    ],
)
def test_live_command_rejects_bad_options(argv, complaint, capsys):
    assert cli.main(argv) == 2
    assert complaint in capsys.readouterr().err
