"""Checks in the notebook: comparison, learner variants, the registry, and ``check`` itself (in-process)."""

import json
import random

import pytest

from mmlab.grading import CheckBroken, CheckFailed, check, learner, register, register_variant, registry, variant
from mmlab.grading.compare import mismatch


# --- compare ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, expected",
    [
        (3, 3),
        (0.1 + 0.2, 0.3),
        ([1, (2, 3)], (1, [2, 3])),
        ({"a": {1, 2}}, {"a": {2, 1}}),
        ("HHs", "HHs"),
        (True, True),
    ],
)
def test_equal_answers_have_no_mismatch(answer, expected):
    assert mismatch(answer, expected) is None


@pytest.mark.parametrize(
    "answer, expected, words",
    [
        (12, 10, "you gave 12, which is too large"),
        (8, 10, "which is too small"),
        ("10", 10, "you gave text (a str) ('10'), but a number is expected"),
        (1, True, "you gave a number (1), but True/False is expected"),
        (True, 1, "you gave True/False (True), but a number is expected"),
        ([1, 2], [1, 2, 3], "your list has 2 items, but 3 are expected"),
        ([1, 5, 3], [1, 2, 3], "item 1 (counting from 0) is wrong: you gave 5, which is too large"),
        ({"Rss": 4}, {"Rss": 4, "LazyFree": 0}, "lacks the key(s) 'LazyFree'"),
        ({"Rss": 4, "x": 1}, {"Rss": 4}, "key(s) that do not belong: 'x'"),
        ({"Rss": 5}, {"Rss": 4}, "the value for key 'Rss' is wrong: you gave 5, which is too large"),
        ({1, 2, 9}, {1, 2, 3}, "member(s) that do not belong: 9; it lacks 1 expected member(s)"),
        ("hhs", "HHs", "check upper/lower case"),
        (7, [7], "you gave a number (7), but a list is expected"),
    ],
)
def test_mismatch_says_what_is_wrong_without_the_answer(answer, expected, words):
    problem = mismatch(answer, expected)
    assert words in problem
    if isinstance(expected, int) and not isinstance(expected, bool):
        assert str(expected) not in problem.replace(str(answer), "")


# --- learner and variants ---------------------------------------------------------------
@register_variant("unit-sizes")
def unit_sizes(rng):
    return {"pages": rng.randrange(1, 10**6), "order": rng.choice([0, 4, 9])}


@pytest.fixture
def clean_learner(monkeypatch):
    for name in (learner.GRADED_LEARNER_ENV, learner.LEARNER_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(learner, "_declared", None)


def test_learner_id_precedence(clean_learner, monkeypatch):
    assert learner.current_learner() == "anonymous"
    monkeypatch.setenv(learner.LEARNER_ENV, "from-env")
    assert learner.current_learner() == "from-env"
    assert learner.learner_id("ada") == "ada"
    monkeypatch.setenv(learner.GRADED_LEARNER_ENV, "folder-name")
    assert learner.learner_id("ada") == "folder-name"
    assert learner.declared_learner() == "ada"


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", 42, "x" * 101])
def test_learner_id_refuses_what_is_not_an_id(clean_learner, bad):
    with pytest.raises(ValueError, match="learner_id"):
        learner.learner_id(bad)


def test_variants_are_per_learner_and_reproducible(clean_learner):
    ada, bob = variant("unit-sizes", "ada"), variant("unit-sizes", "bob")
    assert ada == variant("unit-sizes", "ada") and ada != bob
    assert ada.pages == ada["pages"] and set(ada) == {"pages", "order"}
    # the draw is random.Random seeded by sha256(learner NUL exercise): reproduce it independently
    import hashlib

    seed = int.from_bytes(hashlib.sha256(b"ada\0unit-sizes").digest()[:8], "big")
    assert dict(ada) == unit_sizes(random.Random(seed))
    assert "learner 'ada'" in repr(ada) and "pages=" in repr(ada)
    with pytest.raises(AttributeError, match="no parameter 'size'"):
        ada.size  # noqa: B018
    assert dict(variant("unit-no-such-variant", "ada")) == {}


# --- registry -----------------------------------------------------------------------------
register(
    "unit-pages",
    points=2,
    exercise="unit-sizes",
    expects="the number of base pages in {pages} pages of order {order}",
    section="lecture 1, section 'Folios'",
    mistakes={"That is the folio count, not the page count.": lambda v: v.pages},
)(lambda v: v.pages << v.order)

register(
    "unit-pages-hidden",
    points=1,
    exercise="unit-sizes",
    hidden=True,
    expects="the same, for any order",
    section="lecture 1",
)(lambda v: v.pages << v.order)


def _reference_double(n):
    return 2 * n


register("unit-double", points=1, expects="a function doubling n", section="lecture 2", cases=lambda v: [(0,), (21,)])(
    _reference_double
)
register("unit-broken", points=1, expects="anything", section="lecture 3")(lambda v: 1 / 0)


def test_unknown_check_suggests_near_ids():
    with pytest.raises(registry.UnknownCheck, match="Did you mean 'unit-pages'"):
        registry.get_check("unit-page")


def test_an_id_registered_by_two_functions_is_refused():
    def one(v):
        return 1

    def two(v):
        return 2

    register("unit-twice", points=1, expects="x", section="y")(one)
    register("unit-twice", points=1, expects="x", section="y")(one)  # the same function again: fine
    with pytest.raises(ValueError, match="registered twice"):
        register("unit-twice", points=1, expects="x", section="y")(two)


def test_registration_refuses_bad_ids_and_points():
    with pytest.raises(ValueError, match="single-line"):
        register(" spaced ", points=1, expects="x", section="y")
    with pytest.raises(ValueError, match="points must be positive"):
        register("unit-free", points=0, expects="x", section="y")


# --- check() -----------------------------------------------------------------------------
@pytest.fixture
def results_file(tmp_path, monkeypatch, clean_learner):
    path = tmp_path / "results.jsonl"
    monkeypatch.setenv("MMLAB_GRADE_RESULTS", str(path))
    monkeypatch.setenv(learner.LEARNER_ENV, "ada")
    return path


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_passing_check_prints_to_stdout_only_and_mentions_hidden_checks(results_file, capsys):
    v = variant("unit-sizes")
    assert check("unit-pages", v.pages << v.order) is None
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("✔ unit-pages passed (2 points).") and "1 hidden check runs" in out
    assert records(results_file) == [{"check": "unit-pages", "status": "passed", "message": out.strip()}]


def test_a_failing_check_raises_an_assertion_error_that_teaches(results_file, capsys, monkeypatch):
    # a learner whose variant has order > 0, so the folio count is a wrong answer
    name = next(n for n in ("ada", "bob", "cy", "dee", "eve") if variant("unit-sizes", n).order)
    monkeypatch.setenv(learner.LEARNER_ENV, name)
    v = variant("unit-sizes")
    with pytest.raises(AssertionError) as raised:
        check("unit-pages", v.pages)
    assert isinstance(raised.value, CheckFailed)
    message = str(raised.value)
    assert message.splitlines() == [
        "✘ unit-pages failed (0 of 2 points).",
        f"Expected: the number of base pages in {v.pages} pages of order {v.order}.",
        f"What is wrong: you gave {v.pages}, which is too small. That is the folio count, not the page count.",
        "Reread: lecture 1, section 'Folios'.",
    ]
    assert capsys.readouterr().err == ""
    assert records(results_file)[0]["status"] == "failed"  # written before the raise


def test_a_function_answer_is_called_on_the_cases(results_file):
    check("unit-double", lambda n: n + n)
    with pytest.raises(CheckFailed, match=r"<lambda>\(21\) is wrong: you gave 22, which is too small"):
        check("unit-double", lambda n: 0 if n == 0 else n + 1)

    def stub(n):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match=r"stub\(0\) raised NotImplementedError: replace the stub"):
        check("unit-double", stub)
    with pytest.raises(CheckFailed, match="but a function is expected"):
        check("unit-double", 42)


def test_a_broken_check_says_it_is_not_the_learners_fault(results_file):
    with pytest.raises(CheckBroken, match="fault in the course"):
        check("unit-broken", 1)
    assert records(results_file)[0]["status"] == "error"


def test_graded_as_another_learner_is_explained(results_file, monkeypatch):
    learner.learner_id("ada")
    monkeypatch.setenv(learner.GRADED_LEARNER_ENV, "ada-folder")
    with pytest.raises(CheckFailed, match=r"graded as learner 'ada-folder' \(your submission folder\)"):
        check("unit-pages", -1)


def test_without_a_results_file_nothing_is_recorded(clean_learner, monkeypatch, tmp_path):
    monkeypatch.delenv("MMLAB_GRADE_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    check("unit-double", _reference_double)
    assert list(tmp_path.iterdir()) == []
