"""The course's own checks (mmlab/grading/checks) against what the lectures state."""

import pytest

from mmlab.grading import learner, variant
from mmlab.grading.checks import madv_free
from mmlab.grading.judge import check_here
from mmlab.grading.registry import get_check


def test_a_written_lazyfree_thp_is_kept_whole_and_the_others_are_freed():
    # Lecture 5 §5.4: one written byte keeps its whole THP (reads 7 everywhere); clean ones read 0.
    assert madv_free.run_scenario(3, [1]) == (2 * 2048, [0, 7, 0])
    assert madv_free.run_scenario(4, []) == (4 * 2048, [0, 0, 0, 0])
    assert madv_free.run_scenario(2, [0, 1, 1]) == (0, [7, 7])


def test_variants_stay_inside_the_scenario():
    for name in ("ada", "bob", "cy", "dee", "eve", "fay"):
        v = variant("lazyfree-written", name)
        assert 3 <= v.nr_thps <= 8 and 1 <= len(v.written) < v.nr_thps
        assert v.written == sorted(set(v.written)) and max(v.written) < v.nr_thps


@pytest.fixture
def ada(monkeypatch):
    monkeypatch.delenv(learner.GRADED_LEARNER_ENV, raising=False)
    monkeypatch.setenv(learner.LEARNER_ENV, "ada")
    return variant("lazyfree-written")


def test_the_common_mistakes_are_named(ada):
    assert "a write after MADV_FREE takes a THP out" in check_here("lazyfree-written-kb", ada.nr_thps * 2048).message
    kept = check_here("lazyfree-written-survivors", [0] * ada.nr_thps).message
    assert "a written one has a dirty PMD and is kept whole" in kept


def test_a_prediction_that_counts_a_thp_written_twice_twice_fails_only_the_hidden_check(ada, capsys):
    def counts_writes(nr_thps, written):
        return (nr_thps - len(written)) * 2048

    assert check_here("lazyfree-predict", counts_writes).status == "passed"  # the learner's own variant has no repeats
    assert get_check("lazyfree-predict-edges").hidden
    edges = check_here("lazyfree-predict-edges", counts_writes)
    assert edges.status == "failed" and "counts_writes(5, [2, 2, 4]) is wrong" in edges.message
