"""The course's exercises (solutions/*.ipynb, mmlab/grading/checks): feedback that teaches, numbers
of one's own, expected answers that follow the model, and reference answers that are right beyond
the cases the checks try.

The promises every notebook keeps are tested for all of them elsewhere: solutions pass under nbval
with their stored outputs (``pytest solutions/``), a released exercise fails every check and passes
with the solutions' answers (tests/test_grading_nbval.py), exercises/ is what ``mmlab build``
writes (tests/test_build_exercises.py), and graded work earns every point, hidden checks included
(tests/test_guide.py).
"""

import dataclasses
import functools
import itertools
import re
from pathlib import Path

import nbformat
import pytest

import mmlab
from mmlab.grading import judge, learner, plain, registry, variant
from mmlab.grading.checks import _reclaim, _support, ex04_mlock, ex07_afterwards
from mmlab.grading.collect import collect
from mmlab.grading.exercises import ex02, ex06, ex07, reclaim
from mmlab.grading.judge import check_here
from mmlab.grading.notebooks import check_calls

REPO = Path(__file__).resolve().parent.parent
NAMES = ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal")


def course_checks() -> list[registry.Check]:
    """The checks of the lecture exercises written with mmlab/grading/checks/ex*.py."""
    registry.load_checks()
    return [c for c in registry._checks.values() if c.solve.__module__.split(".")[-1].startswith("ex0")]


@functools.cache
def reference(notebook: str) -> dict:
    """The names a solution notebook defines: its code cells run in order, without check cells
    and cells whose output varies (the live one)."""
    namespace: dict = {}
    for cell in nbformat.read(REPO / "solutions" / notebook, as_version=4).cells:
        if cell.cell_type != "code" or check_calls(cell.source):
            continue
        if "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        exec(compile(cell.source, notebook, "exec"), namespace)
    return namespace


@pytest.fixture
def ada(monkeypatch):
    """The current learner is "ada", outside any grading run."""
    for name in (learner.GRADED_LEARNER_ENV, "MMLAB_GRADING", "MMLAB_CHECK_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(learner, "_declared", None)
    monkeypatch.setenv(learner.LEARNER_ENV, "ada")


def feedback(check_id: str, answer) -> str:
    verdict = check_here(check_id, answer)
    assert verdict.status == "failed", verdict.message
    return verdict.message


# --- every check points at a section that exists ----------------------------------------------


def lecture_headings() -> dict[str, str]:
    """'5.4' -> its title, from the course notebooks' markdown headings."""
    found = {}
    for path in (REPO / "course").glob("0*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for number, title in re.findall(r"^## (\d\.\d) (.+)$", cell.source, re.MULTILINE):
                    found[number] = title.strip()
    return found


def test_each_section_the_feedback_names_is_a_lecture_heading():
    headings = lecture_headings()
    for number, title in _support.SECTIONS.items():
        assert headings.get(number) == title, f"section {number}"
        lecture = int(number[0])
        assert (REPO / _support.LECTURES[lecture]).is_file()


def test_every_exercise_check_says_what_it_expects_and_where_to_reread():
    checks = course_checks()
    assert len(checks) >= 20
    assert {c.id.split("-")[0] for c in checks} == {f"ex0{n}" for n in range(1, 8)}
    for spec in checks:
        assert re.match(r"lecture \d, section \d\.\d '", spec.section), spec.id
        spec.expects.format_map(variant(spec.exercise, "ada"))  # fills in from any variant
    hidden = {c.exercise for c in checks if c.hidden}
    assert len(hidden) >= 8  # most exercises keep cases back for grading


def test_every_lecture_from_1_to_7_has_an_exercise_notebook_calling_its_checks():
    called = {}
    for path in sorted((REPO / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                called.update(dict.fromkeys(check_calls(cell.source.replace("### BEGIN HIDDEN TESTS", "")), path.name))
    for spec in course_checks():
        notebook = called.get(spec.id)
        assert notebook, f"no solution notebook calls {spec.id}"
        assert notebook.startswith(spec.id[2:4] + "-"), (spec.id, notebook)


# --- numbers of one's own ------------------------------------------------------------------------


def test_learners_get_their_own_numbers_in_every_exercise_that_has_numbers():
    exercises = {c.exercise for c in course_checks() if registry.variant_maker(c.exercise)}
    assert len(exercises) >= 9
    for exercise in exercises:
        drawn = [dict(variant(exercise, name)) for name in NAMES]
        assert any(d != drawn[0] for d in drawn), exercise
        assert dict(variant(exercise, "ada")) == drawn[0]  # and the same ones again, for the grader


def test_a_right_answer_for_one_learner_is_checked_against_another_learners_numbers(ada, monkeypatch):
    solve = registry.get_check("ex03-reclaim-counts").solve
    mine = solve(variant("ex03-reclaim-counts"))
    assert check_here("ex03-reclaim-counts", mine).status == "passed"
    other = next(n for n in NAMES if solve(variant("ex03-reclaim-counts", n)) != mine)
    monkeypatch.setenv(learner.LEARNER_ENV, other)
    assert "What is wrong" in feedback("ex03-reclaim-counts", mine)


# --- feedback that teaches -------------------------------------------------------------------


def _wrong_counters():
    answer = registry.get_check("ex01-thp-counters").solve(variant("ex01-thp-events"))
    return {**answer, "thp_split_pmd": answer["thp_split_pmd"] - 1}


def _counts_without_pins(mapping, pinned):
    mapcount = 1 if mapping == "pmd" else mapping
    entire = int(mapping == "pmd")
    return {"refcount": mapcount, "mapcount": mapcount, "entire_mapcount": entire, "nr_pages_mapped": mapcount - entire}


def _walk_that_never_ends_after_a_pmd(pvmw):
    entry = pvmw.vma.vm_mm.pmds.get(pvmw.address >> 21)
    pvmw.pmd, pvmw.pte, pvmw.ptl = entry, None, "PMD lock"
    return True


def _half_locks_mlock(calls):
    outcome = reference("04-mlock.ipynb")["mlock_outcome"](calls)
    return {**outcome, "mlocked": outcome["Locked"] > 0}


def _pmd_before_vm_locked(step):
    """6.11's step with the PMD case checked before VM_LOCKED."""
    solution = reference("06-the-series.ipynb")
    if step.pmd_mapped:
        clean = solution["discards"](step.folio_dirty, step.entry_dirty, step.refcount, step.mapcount)
        return "discard PMD" if step.lazyfree and clean else "split PMD, restart"
    return solution["ttu_step_6_11"](step)


def _discards_whatever_the_refcount(folio_dirty, pmd_dirty, refcount, mapcount):
    return not folio_dirty and not pmd_dirty


def _no_stable_fix(kernel, history):
    return reference("07-afterwards.ipynb")["fate"]("6.18" if kernel == "6.18.44" else kernel, history)


FEEDBACK = [
    ("ex01-thp-counters", _wrong_counters, ["Count every PMD split", "lecture 1, section 1.6"]),
    ("ex01-counts", lambda: _counts_without_pins, ["is wrong: the value for key 'refcount'", "section 1.5"]),
    ("ex02-walk-pmd", lambda: ex02.walk_yields(_walk_that_never_ends_after_a_pmd), ["never ends"]),
    ("ex04-mlock-calls", lambda: _half_locks_mlock, ["the value for key 'mlocked'", "lecture 4, section 4.3"]),
    (
        "ex05-mlock-table",
        lambda: ex05_wrong_table(),
        ["the value for key 'MADV_FREE, mlock'", "populates the range with write faults", "section 5.8"],
    ),
    ("ex06-discard", lambda: _discards_whatever_the_refcount, ["(False, False, ", "you gave True", "section 6.5"]),
    ("ex06-ttu-step", lambda: _pmd_before_vm_locked, ["VM_LOCKED", "lecture 6, section 6.3"]),
    ("ex06-v6-verdict", lambda: ["MADV_FREE", "mlock2 ONFAULT"], ["but text (a str) is expected", "section 6.6"]),
    ("ex07-fate", lambda: _no_stable_fix, ["('6.18.44', 'clean') is wrong", "section 7.3"]),
    ("ex07-experiment", lambda: lambda m: True, ["<model Machine 6.10", "lecture 7, section 7.4"]),
]


def ex05_wrong_table():
    table = registry.get_check("ex05-mlock-table").solve(variant("ex05-mlock-table"))
    table["MADV_FREE, mlock"] = dict(table["MADV_FREE, mlock2(MLOCK_ONFAULT)"])
    return table


@pytest.mark.parametrize("check_id, wrong, phrases", FEEDBACK, ids=[f[0] for f in FEEDBACK])
def test_a_wrong_answer_is_told_what_was_expected_what_is_wrong_and_what_to_reread(
    ada, capsys, check_id, wrong, phrases
):
    message = feedback(check_id, wrong())
    lines = message.splitlines()
    assert lines[0].startswith(f"✘ {check_id} failed")
    assert [line.split(":")[0] for line in lines[1:4]] == ["Expected", "What is wrong", "Reread"]
    for phrase in phrases:
        assert phrase in message
    assert capsys.readouterr().err == ""


def test_a_stub_is_told_to_replace_itself(ada):
    def stub(*args):
        raise NotImplementedError()

    assert "replace the stub with your code" in feedback("ex06-ttu-step", stub)


def test_passing_says_honestly_that_hidden_checks_remain(ada, capsys):
    assert check_here("ex06-discard", reference("06-the-series.ipynb")["discards"]).status == "passed"
    assert "This was the public check only" in capsys.readouterr().out
    assert check_here("ex06-v6-verdict", "none").status == "passed"
    assert capsys.readouterr().out == "✔ ex06-v6-verdict passed (1 point).\n"


# --- hidden checks try what the public ones do not ------------------------------------------------


def test_a_6_10_step_that_ignores_pg_dirty_passes_the_public_cases_only(ada):
    def only_the_pte_bit(step):
        if step.vma_locked:
            return "abort" if step.large else "mlock, abort"
        clean = not step.entry_dirty and step.refcount == step.mapcount + 1
        return "discard PTE" if clean else "set swapbacked, abort"

    assert check_here("ex03-ttu-step", only_the_pte_bit).status == "passed"
    assert "is wrong: you gave 'discard PTE'" in feedback("ex03-ttu-step-more", only_the_pte_bit)


def test_a_walk_that_never_asks_which_folio_a_pmd_maps_passes_the_public_cases_only(ada):
    source = nbformat.read(REPO / "solutions" / "02-reverse-mapping.ipynb", as_version=4)
    namespace = reference("02-reverse-mapping.ipynb")
    [walk] = [c.source for c in source.cells if c.cell_type == "code" and "def my_page_vma_mapped_walk" in c.source]
    careless = walk.replace("            if entry.folio is not folio:\n                return not_found(pvmw)", "")
    assert careless != walk
    exec(careless, namespace)
    yields = ex02.walk_yields(namespace["my_page_vma_mapped_walk"])
    assert check_here("ex02-walk-pmd", yields).status == "passed"
    assert "my_page_vma_mapped_walk(Layout(other-thp)) is wrong" in feedback("ex02-walk-pmd-more", yields)


def test_an_experiment_that_needs_the_huge_zero_page_fails_where_there_is_none(monkeypatch):
    def needs_zero_page(m):
        p = m.spawn()
        a = p.mmap(mmlab.HPAGE_PMD_SIZE)
        p.madvise(a, mmlab.HPAGE_PMD_SIZE, mmlab.MADV_HUGEPAGE)
        p.write(a, mmlab.HPAGE_PMD_SIZE)
        p.madvise(a, mmlab.HPAGE_PMD_SIZE, mmlab.MADV_FREE)
        p.madvise(a, mmlab.HPAGE_PMD_SIZE, mmlab.MADV_PAGEOUT)
        p.read(a)
        return p.thp_map(a, mmlab.HPAGE_PMD_SIZE) == "Z"

    with_zero_page = next(n for n in NAMES if variant("ex07-experiment", n).use_zero_page)
    for name in (learner.GRADED_LEARNER_ENV, "MMLAB_GRADING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(learner, "_declared", None)
    monkeypatch.setenv(learner.LEARNER_ENV, with_zero_page)
    assert check_here("ex07-experiment", needs_zero_page).status == "passed"
    assert "huge zero page off" in feedback("ex07-experiment-settings", needs_zero_page)


# --- expected answers come from the model ---------------------------------------------------------


def test_the_experiments_expected_verdict_follows_the_models_profile(monkeypatch):
    machine = ex07.ExperimentMachine("6.18.44", "madvise", True)
    assert ex07_afterwards.discards_at_pmd_level(machine) is False
    without_the_stable_fix = dataclasses.replace(mmlab.PROFILES["6.18.44"], pmd_lazyfree_discard=True)
    monkeypatch.setitem(mmlab.PROFILES, "6.18.44", without_the_stable_fix)
    assert ex07_afterwards.discards_at_pmd_level(machine) is True
    assert ex07_afterwards.fate("6.18.44", "clean")["thp_split_pmd"] == 0


def test_each_step_decision_is_read_from_what_the_model_did():
    for recipe, expected in [
        (reclaim.Recipe("6.11"), "discard PMD"),
        (reclaim.Recipe("6.18.44"), "split PMD, restart"),
        (reclaim.Recipe("6.11-v6", locked=True), "mlock, abort"),
        (reclaim.Recipe("6.15", rewritten=3), "set swapbacked, abort"),
    ]:
        step, decision = _reclaim.observe(recipe)
        assert step.kernel == recipe.kernel and decision == expected, recipe
        assert _reclaim.decision(step) == expected and not hasattr(step, "recipe")


@pytest.mark.parametrize("check_id", ["ex03-ttu-step", "ex03-ttu-step-more", "ex06-ttu-step", "ex06-ttu-step-more"])
def test_a_step_function_is_given_what_the_step_sees_not_how_to_replay_it(check_id):
    """A learner's function once got each step's Recipe, and could prepare the folio again and
    read the model's decision: full marks for a rule it never stated."""
    spec = registry.get_check(check_id)
    v = learner.variant(spec.exercise, "ada")
    cases = judge.cases_for(spec, v)
    assert "Recipe" not in plain.dumps(cases)

    def replay(step):
        return _reclaim.observe(step.recipe)[1]

    assert all(isinstance(step, reclaim.WalkStep) for (step,) in map(plain.decode, cases))
    verdict = judge.judge(spec, v, cases, collect(lambda: replay, cases))
    assert verdict.points == 0 and "has no attribute 'recipe'" in verdict.message


def test_the_v6_calls_report_what_each_call_returned():
    seen = ex06.run_calls("6.11", ["mlock", "MADV_FREE", "child exit"])
    assert seen["results"] == ["ok", "EINVAL", "no child"]
    assert seen["mlocked"] and seen["reads"] == 7 and not seen["restored a large folio's mlock in try_to_unmap_one"]
    with pytest.raises(ValueError, match="unknown call"):
        ex06.run_calls("6.11", ["mlock everything"])


# --- the reference answers hold beyond the checked cases ------------------------------------------


def test_the_mlock_rule_matches_the_model_for_every_sequence_of_up_to_three_calls():
    rule = reference("04-mlock.ipynb")["mlock_outcome"]
    for length in (1, 2, 3):
        for calls in itertools.product(ex04_mlock.CALLS, repeat=length):
            assert rule(calls) == ex04_mlock.mlock_outcome(calls), calls


def test_the_fork_rule_matches_the_model_on_a_grid():
    rule = reference("02-reverse-mapping.ipynb")["fork_cow_counts"]
    model = registry.get_check("ex02-fork-cow").solve
    writes = (0, 2, 100, 512)
    for parent in (0, 3, 512):
        for children in itertools.chain([()], ((w,) for w in writes), itertools.product(writes, repeat=2)):
            assert rule(parent, children) == model(parent, children), (parent, children)


def recipes(kernel: str):
    """Every way reclaim.Recipe can prepare a folio, within what its steps allow."""
    for thp, pte_mapped, lazyfree, rewritten, touched, pinned, shared, locked in itertools.product(
        (True, False), (False, True), (True, False), (None, 0, 7), (None, 7), (False, True), (False, True),
        (False, True),
    ):
        if (not thp and (pte_mapped or rewritten == 7)) or (touched is not None and not pte_mapped):
            continue
        if shared and (pinned or rewritten is not None) or (not lazyfree and (rewritten is not None or touched)):
            continue
        yield reclaim.Recipe(kernel, thp, pte_mapped, lazyfree, rewritten, touched, pinned, shared, locked)


@pytest.mark.parametrize(
    "notebook, function, kernel",
    [("03-reclaim-before-the-series.ipynb", "ttu_step_6_10", "6.10"), ("06-the-series.ipynb", "ttu_step_6_11", "6.11")],
)
def test_the_step_rules_match_the_model_for_every_way_a_folio_can_be_prepared(notebook, function, kernel):
    rule = reference(notebook)[function]
    checked = 0
    for recipe in recipes(kernel):
        step, decision = _reclaim.observe(recipe)
        if not recipe.lazyfree and not step.pmd_mapped and not step.vma_locked:
            continue  # a swap-backed folio met at a PTE would go to swap; the model has no swap device
        assert rule(step) == decision, recipe
        checked += 1
    assert checked > 40


def test_the_lazyfree_rules_match_the_model_on_a_grid():
    pages_freed = reference("05-madv-free.ipynb")["pages_freed"]
    model = registry.get_check("ex05-freed").solve
    for freed, written, pinned, child in itertools.product(
        ("all", "first half"), ((), (0,), (3, 300), (511,)), (False, True), ("none", "alive", "exited")
    ):
        if child != "none" and (pinned or (child == "alive" and written)):
            continue  # beyond what the exercise asks: a pin across fork(), a parent writing a shared THP
        assert pages_freed(freed, written, pinned, child) == model(freed, written, pinned, child)


# --- the experiment on the host's own kernel -------------------------------------------------------


def test_on_this_kernel_says_in_one_line_why_it_cannot_run(monkeypatch, capsys):
    import mmlab.live

    monkeypatch.setattr(mmlab.live, "probe", lambda: mmlab.live.Environment("Linux", "6.1", thp="never"))
    ex07.on_this_kernel(reference("07-afterwards.ipynb")["discards_at_pmd_level"])
    out = capsys.readouterr().out
    assert out.startswith("not run on this machine:") and out.count("\n") == 1


@pytest.mark.live
def test_the_reference_experiment_agrees_with_this_kernels_split_counter(capsys):
    """The experiment reads its own page tables; the kernel's thp_split_pmd counter tells the same
    story independently: MADV_PAGEOUT of N clean lazyfree THPs splits N PMDs, or none."""
    from mmlab.live import Machine

    nr, size = 8, 8 * mmlab.HPAGE_PMD_SIZE
    with Machine() as m:
        p = m.spawn()
        a = p.mmap(size)
        p.madvise(a, size, mmlab.MADV_HUGEPAGE)
        p.write(a, size)
        p.madvise(a, size, mmlab.MADV_FREE)
        before = m.vmstat["thp_split_pmd"]
        p.madvise(a, size, mmlab.MADV_PAGEOUT)
        splits = m.vmstat["thp_split_pmd"] - before  # global: other processes can only add to it
    if not (splits == 0 or splits >= nr):
        pytest.skip(f"thp_split_pmd moved by {splits} for {nr} THPs: noise, no clear answer")
    ex07.on_this_kernel(reference("07-afterwards.ipynb")["discards_at_pmd_level"])
    out = capsys.readouterr().out
    assert ("does not discard" not in out) == (splits == 0), out
