"""mmlab.viz step-through, profile diff and scenario explorer: the plain-Python state
behind each widget, then the widgets themselves driven as a front end would (set values,
click, read the resulting state); no browser here (see test_browser.py)."""

import re

import pytest

from mmlab import MADV_FREE, MADV_HUGEPAGE, MADV_PAGEOUT, PAGE_SIZE, Machine, MiB
from mmlab.viz import (
    Action,
    Explorer,
    Replay,
    profile_diff_html,
    profile_diff_widget,
    replay_widget,
    switched_functions,
    trace_step,
)
from mmlab.viz.explorer import ACTIONS, ExplorerWidget

THP = 2 * MiB


def lazyfree_reclaim_trace(kernel, size=THP):
    """The trace of MADV_PAGEOUT on clean lazyfree THPs."""
    m = Machine(kernel=kernel)
    p = m.spawn()
    a = p.mmap(size)
    p.madvise(a, size, MADV_HUGEPAGE)
    p.write(a, size)
    p.madvise(a, size, MADV_FREE)
    m.clear_trace()
    p.madvise(a, size, MADV_PAGEOUT)
    return m.trace


# ---------------------------------------------------------------- Replay


def test_6_10_discards_a_lazyfree_thp_one_pte_at_a_time_and_the_replay_folds_the_repeats():
    replay = Replay(lazyfree_reclaim_trace("6.10"), functions={"try_to_unmap_one"})
    assert len(replay) == 512  # one decision per 4 KiB page of the THP
    assert replay.decisions() == [(0, 512)]
    assert replay.sentence(0).endswith("The next 511 step(s) make the same decision.")
    assert replay.next_decision(0) == 511  # nothing else to jump to: the last step
    assert "discard 1 PTE(s)" in replay.sentence(0)


def test_6_18_44_discards_the_same_thp_in_one_batch():
    replay = Replay(lazyfree_reclaim_trace("6.18.44"), functions={"try_to_unmap_one"})
    sentences = [replay.sentence(i) for i in range(len(replay))]
    assert any("discard 512 PTE(s)" in s for s in sentences)
    assert not any("discard 1 PTE(s)" in s for s in sentences)


def test_a_step_shows_the_folio_before_and_after_it():
    events = lazyfree_reclaim_trace("6.11")
    i = next(i for i, e in enumerate(events) if e.function == "__discard_anon_folio_pmd_locked")
    sentence, dot = trace_step(events, i)
    assert sentence.startswith(f"Step {i + 1} of {len(events)}, in __discard_anon_folio_pmd_locked (")
    assert "discarded at PMD level" in sentence
    before, after = dot.split('"after"')[0], dot.split('"after"')[1]
    # isolated for reclaim (refcount 2, one PMD mapping) -> unmapped, only reclaim's reference left
    assert re.search(r"refcount</td><td[^>]*>2<", before) and re.search(r"refcount</td><td[^>]*><b>1</b>", after)
    assert re.search(r">mapcount</td><td[^>]*><b>0</b>", after)


def test_replay_reports_bad_steps_clearly():
    with pytest.raises(IndexError, match="empty"):
        Replay([]).step(0)
    replay = Replay(lazyfree_reclaim_trace("6.11"))
    with pytest.raises(IndexError, match=f"from 0 to {len(replay) - 1}"):
        replay.step(len(replay))


def test_the_replay_widget_steps_with_its_buttons_and_slider():
    events = lazyfree_reclaim_trace("6.10")
    ui = replay_widget(events)
    assert ui.index == 0 and ui.sentence.value.startswith("<p>Step 1 of")
    ui.back.click()
    assert ui.index == 0
    ui.forward.click()
    assert ui.index == 1 and "Step 2 of" in ui.sentence.value and ui.diagram.value.startswith("<svg")
    ui.slider.value = len(events)
    assert ui.sentence.value.startswith(f"<p>Step {len(events)} of {len(events)}")
    ui.forward.click()
    assert ui.index == len(events) - 1
    start, count = max(ui.replay.decisions(), key=lambda run: run[1])  # the PTE-by-PTE discards
    assert count > 500
    ui.show(start)
    ui.skip.click()
    assert ui.index == start + count and "discard" not in events[ui.index].message
    with pytest.raises(ValueError, match="empty"):
        replay_widget(Machine())


# ---------------------------------------------------------------- profile diff


def test_the_functions_that_read_a_switch_are_offered():
    assert {"try_to_unmap_one", "__discard_anon_folio_pmd_locked"} <= set(switched_functions())


def test_the_diff_cites_the_commit_and_shows_the_split_moving_into_the_walk():
    html = profile_diff_html("try_to_unmap_one", "6.10", "6.11")
    assert "29e847d2ade3" in html  # mm/rmap: integrate PMD-mapped folio splitting into pagewalk loop
    assert "735ecdfaf4e8" in html  # mm/vmscan: avoid split lazyfree THP during shrink_folio_list()
    assert re.search(r'<span style="background: #ffebe9">-\s+split_huge_pmd_address\(', html)
    assert re.search(r'<span style="background: #e6ffec">\+\s+split_huge_pmd_locked\(', html)


def test_side_by_side_shows_both_sources_with_line_numbers():
    html = profile_diff_html("try_to_unmap_one", "6.10", "6.11", side_by_side=True)
    assert "try_to_unmap_one in 6.10</th>" in html and "try_to_unmap_one in 6.11</th>" in html
    assert html.count("def try_to_unmap_one(") == 2


def test_changes_elsewhere_are_told_apart():
    html = profile_diff_html("__discard_anon_folio_pmd_locked", "6.15", "6.18")
    assert "runs the same code in 6.15 and 6.18" in html
    assert "Other changes between them" in html and "mlock_large_in_ttu" in html
    assert "<span" not in html  # no diff lines


def test_the_diff_refuses_unknown_names_with_the_choices():
    with pytest.raises(ValueError, match="try_to_unmap_one"):
        profile_diff_html("try_to_unmap", "6.10", "6.11")
    with pytest.raises(ValueError, match="6.18.44"):
        profile_diff_html("try_to_unmap_one", "6.10", "6.99")


def test_the_profile_diff_widget_redraws_on_every_choice():
    ui = profile_diff_widget()
    assert "29e847d2ade3" in ui.output.value
    ui.a.value, ui.b.value = "6.15", "6.18.44"
    assert "29e847d2ade3" not in ui.output.value and "pmd_lazyfree_discard" in ui.output.value
    ui.view.value = "side by side"
    assert "try_to_unmap_one in 6.18.44</th>" in ui.output.value
    ui.function.value = "__discard_anon_folio_pmd_locked"
    assert "__discard_anon_folio_pmd_locked in 6.15</th>" in ui.output.value


# ---------------------------------------------------------------- Explorer


def test_an_explorer_records_outcomes_as_the_syscalls_return_them():
    x = Explorer("6.11", 8 * MiB, actions=["write", Action("mlock", length=THP)])
    assert str(x.do("MADV_FREE")) == "process 1000: madvise(a, 8 MiB, MADV_FREE) -> EINVAL"  # VM_LOCKED part
    assert x.do("read", offset=3 * MiB).value == 1
    x.do("munmap", offset=6 * MiB, length=THP)
    assert x.do("read", offset=7 * MiB).error == "SIGSEGV"
    assert x.thp_map() == "HHH-"
    assert x.smaps()["Locked"] == 2048


def test_replaying_on_another_kernel_shows_what_the_series_changed():
    x = Explorer("6.10", 8 * MiB, actions=["write", "MADV_FREE", "MADV_PAGEOUT"])
    assert x.outcomes[-1].vmstat["thp_split_pmd"] == 4  # 6.10 splits each of the 4 PMDs first
    assert x.outcomes[-1].vmstat["pglazyfreed"] == 8 * MiB // PAGE_SIZE
    x.set_kernel("6.11")
    assert x.kernel == "6.11" and [o.call for o in x.outcomes][-1] == "madvise(a, 8 MiB, MADV_PAGEOUT)"
    assert "thp_split_pmd" not in x.outcomes[-1].vmstat
    assert x.outcomes[-1].vmstat["pglazyfreed"] == 8 * MiB // PAGE_SIZE
    assert [e.function for e in x.outcomes[-1].events].count("__discard_anon_folio_pmd_locked") == 4


def test_replay_leaves_out_actions_that_no_longer_apply():
    x = Explorer("6.11", 4 * MiB, actions=["write", "fork"])
    x.history.insert(1, Action("unpin"))  # as if a pin had succeeded on the old kernel only
    x.set_kernel("6.15")
    assert [a.name for a in x.history] == ["write", "fork"] and x.pids == [1000, 1001]


def test_fork_exit_and_pins_are_tracked():
    x = Explorer("6.11", 4 * MiB, actions=["write"])
    x.do("fork")
    assert x.pids == [1000, 1001]
    x.do("pin", pid=1001, length=PAGE_SIZE)
    with pytest.raises(ValueError, match="holds no pin"):
        x.do("unpin", pid=1000)
    assert x.do("unpin", pid=1001).error is None
    x.do("exit", pid=1000)
    assert x.pids == [1001]
    with pytest.raises(ValueError, match="no running process 1000"):
        x.do("write", pid=1000)


def test_the_explorer_refuses_bad_input_with_what_to_do():
    with pytest.raises(ValueError, match="choose one of"):
        Explorer(actions=["MADV_WILLNEED"])
    with pytest.raises(ValueError, match="outside the region"):
        Explorer(size=4 * MiB).do("read", offset=4 * MiB)
    with pytest.raises(ValueError, match="multiple of 4096"):
        Explorer(size=1000)


def test_the_explorer_widget_runs_the_pressed_action_with_the_fields():
    ui = ExplorerWidget(Explorer("6.11", 8 * MiB, actions=["write"]))
    assert set(ui.buttons) == set(ACTIONS)
    ui.offset.value, ui.length.value = 2, 2
    ui.buttons["MADV_FREE"].click()
    assert ui.explorer.history[-1] == Action("MADV_FREE", 1000, 2 * MiB, 2 * MiB, 1)
    assert ui.explorer.smaps()["LazyFree"] == 2048
    assert "madvise(a+2 MiB, 2 MiB, MADV_FREE) -&gt; ok" in ui.outcome.value
    assert "LazyFree" in ui.smaps.value and "pglazyfree<" in ui.vmstat.value
    assert ui.diagram.value.startswith("<svg") and "PTE table 0x7f0000400000" not in ui.diagram.value
    ui.offset.value, ui.length.value = 2.5, 0.5
    ui.buttons["MADV_DONTNEED"].click()
    assert "PTE table 0x7f0000400000" in ui.diagram.value  # the partial DONTNEED split that PMD


def test_the_explorer_widget_follows_forks_exits_and_the_kernel():
    ui = ExplorerWidget(Explorer("6.10", 4 * MiB, actions=["write", "MADV_FREE"]))
    ui.buttons["fork"].click()
    assert list(ui.process.options) == [1000, 1001]
    ui.process.value = 1001
    ui.buttons["exit"].click()
    assert list(ui.process.options) == [1000] and ui.process.value == 1000
    ui.buttons["MADV_PAGEOUT"].click()
    assert "thp_split_pmd" in ui.vmstat.value
    ui.kernel.value = "6.11"
    assert ui.explorer.kernel == "6.11" and len(ui.explorer.history) == 5
    assert "thp_split_pmd" not in ui.vmstat.value and "pglazyfreed" in ui.vmstat.value
    ui.offset.value = 64
    ui.buttons["read"].click()
    assert "outside the region" in ui.outcome.value and len(ui.explorer.history) == 5
