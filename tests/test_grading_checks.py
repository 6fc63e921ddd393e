"""Checks in the notebook: comparison, plain data, learner variants, the registry, the judge and ``check``."""

import random
from dataclasses import dataclass

import pytest

from mmlab.grading import check, judge, learner, plain, registry, variant
from mmlab.grading.collect import collect
from mmlab.grading.compare import mismatch
from mmlab.grading.registry import register, register_variant


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
        (10**400, 0.5, "which is too large"),  # beyond any float: no OverflowError in the judge
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
    for name in (learner.GRADED_LEARNER_ENV, learner.LEARNER_ENV, learner.GRADED_VARIANTS_ENV, "MMLAB_GRADING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(learner, "_declared", None)


def test_learner_id_precedence(clean_learner, monkeypatch):
    assert learner.current_learner() == "anonymous"
    monkeypatch.setenv(learner.LEARNER_ENV, "from-env")
    assert learner.current_learner() == "from-env"
    assert learner.learner_id("ada") == "ada"
    monkeypatch.setenv(learner.GRADED_LEARNER_ENV, "folder-name")
    assert learner.learner_id("ada") == "folder-name"
    assert learner._declared == "ada"  # kept, though the folder name wins while graded


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
    hidden = learner.hidden_rng(ada).random()
    assert hidden == learner.hidden_rng(variant("unit-sizes", "ada")).random() != random.Random(seed).random()
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


# --- plain data --------------------------------------------------------------------------
@plain.record_type
@dataclass(frozen=True)
class Known:
    kind: str
    size: int = 0


@dataclass
class Unknown:
    name: str


@pytest.mark.parametrize(
    "value, back",
    [
        ((1, [2, 3.5]), [1, [2, 3.5]]),
        ({"a": None, "b": True}, {"a": None, "b": True}),
        ({1, 3, 2}, {1, 2, 3}),
        ({(1, 2): "x", 3: "y"}, {(1, 2): "x", 3: "y"}),
        ({"$set": 1}, {"$set": 1}),
        (float("inf"), float("inf")),
        (Known("pmd", 2), Known("pmd", 2)),
    ],
)
def test_plain_data_round_trips(value, back):
    text = plain.dumps(plain.encode(value))
    assert plain.decode(plain.loads(text)) == back


def test_an_unknown_dataclass_comes_back_as_a_read_only_record():
    record = plain.round_trip(Unknown("ada"))
    assert isinstance(record, plain.Record) and record.name == "ada" and record["name"] == "ada"
    assert repr(record) == "Unknown(name='ada')"


@pytest.mark.parametrize("value, words", [(print, "a function (print)"), ({"x": object()}, "builtins.object object")])
def test_what_is_not_plain_is_refused_with_what_to_give_instead(value, words):
    with pytest.raises(plain.NotPlain, match="answer with numbers") as refused:
        plain.encode(value)
    assert words in str(refused.value)


def test_plain_text_from_a_sandbox_is_parsed_with_bounds():
    with pytest.raises(plain.NotPlain, match="not valid JSON"):
        plain.loads("{'a': 1}")
    deep = "[" * 100 + "]" * 100
    with pytest.raises(plain.NotPlain, match="nested"):
        plain.encode(plain.decode(plain.loads(deep)))


# --- collecting and judging -------------------------------------------------------------
def test_collect_calls_a_function_on_each_case_and_keeps_each_outcome():
    def answer(n):
        if n == 1:
            raise NotImplementedError
        if n == 2:
            raise KeyError("x")
        return {"n": n, "set": {n}}

    got = collect(lambda: answer, [[0], [1], [2]])
    assert got["name"] == "answer"
    assert got["results"] == [
        {"value": {"n": 0, "set": {"$set": [0]}}},
        {"stub": True},
        {"error": "KeyError: 'x'"},
    ]
    assert collect(lambda: undefined_name, None) == {"error": "NameError: name 'undefined_name' is not defined"}  # noqa: F821
    assert collect(lambda: answer, None) == {"function": "answer"}
    assert "unplain" in collect(lambda: object(), None)


def _verdict(check_id, collected, who="ada"):
    spec = registry.get_check(check_id)
    v = variant(spec.exercise, who)
    return judge.judge(spec, v, judge.cases_for(spec, v), collected)


def test_a_passing_value_mentions_the_hidden_checks(clean_learner):
    v = variant("unit-sizes", "ada")
    verdict = _verdict("unit-pages", {"value": v.pages << v.order})
    assert (verdict.status, verdict.points) == ("passed", 2)
    assert verdict.message.startswith("✔ unit-pages passed (2 points).") and "1 hidden check runs" in verdict.message


def test_a_wrong_value_teaches_and_names_the_misconception(clean_learner):
    name = next(n for n in ("ada", "bob", "cy", "dee", "eve") if variant("unit-sizes", n).order)
    v = variant("unit-sizes", name)
    verdict = _verdict("unit-pages", {"value": v.pages}, who=name)
    assert (verdict.status, verdict.points) == ("failed", 0)
    assert verdict.message.splitlines() == [
        "✘ unit-pages failed (0 of 2 points).",
        f"Expected: the number of base pages in {v.pages} pages of order {v.order}.",
        f"What is wrong: you gave {v.pages}, which is too small. That is the folio count, not the page count.",
        "Reread: lecture 1, section 'Folios'.",
    ]


register(
    "unit-table",
    points=2,
    expects="a dict of two counts",
    section="lecture 1",
    mistakes={"KiB are not pages.": lambda v: {"rss": 8, "lazy": 4}},
)(lambda v: {"rss": 2, "lazy": 1})


def test_a_misconception_is_named_even_when_it_is_not_the_only_mistake(clean_learner):
    verdict = _verdict("unit-table", {"value": {"rss": 8, "lazy": 99}})
    assert "KiB are not pages." in verdict.message
    assert "KiB are not pages." not in _verdict("unit-table", {"value": {"rss": 3, "lazy": 99}}).message


def test_a_function_answer_earns_points_per_input(clean_learner):
    assert _verdict("unit-double", collect(lambda: lambda n: n + n, [[0], [21]])).status == "passed"
    half = _verdict("unit-double", collect(lambda: lambda n: 0 if n == 0 else n + 1, [[0], [21]]))
    assert (half.status, half.points, half.max_points) == ("failed", 0.5, 1)
    assert "1 of 2 inputs right" in half.message and "<lambda>(21) is wrong: you gave 22" in half.message

    def stub(n):
        raise NotImplementedError()

    assert "stub(0): it raised NotImplementedError" in _verdict("unit-double", collect(lambda: stub, [[0]])).message
    assert "but a function is expected" in _verdict("unit-double", collect(lambda: 42, [[0]])).message


DEEP = {"value": 0}
for _ in range(plain.MAX_DEPTH + 1):
    DEEP = {"value": [DEEP["value"]]}


@pytest.mark.parametrize(
    "forged",
    [
        {},
        {"results": "x"},
        {"results": [{"value": {"$record": 1}}]},
        {"value": [[[[]]]]},
        {"results": [None, 7]},
        # tags a sandbox can forge but encode() never makes: each once crashed the judge
        {"value": {"$float": "junk"}},
        {"value": {"$set": [{"a": 1}]}},
        {"value": {"$pairs": [[{}, 1]]}},
        {"value": {"$pairs": [1]}},
        {"results": [{"value": {"$float": [1]}}]},
        {"not_function": [1]},
        {"not_function": {"value": {"$set": [[{}]]}}},
        DEEP,
    ],
)
def test_forged_or_malformed_answers_are_judged_not_crashed_on(clean_learner, forged):
    for check_id in ("unit-pages", "unit-double"):
        verdict = _verdict(check_id, forged)
        assert verdict.status in ("failed", "error") and verdict.points == 0


def test_forged_plain_data_is_the_learners_answer_that_cannot_be_graded(clean_learner):
    verdict = _verdict("unit-pages", {"value": {"$set": [{"a": 1}]}})
    assert "your answer cannot be graded: it is not data the grader can read" in verdict.message
    assert "cannot be graded: it is nested more than 40 levels deep" in _verdict("unit-pages", DEEP).message


def test_an_answer_that_raised_is_an_error(clean_learner):
    verdict = _verdict("unit-pages", {"error": "NameError: name 'answer' is not defined"})
    assert verdict.status == "error" and "computing your answer raised NameError" in verdict.message


def test_a_broken_check_says_it_is_not_the_learners_fault(clean_learner):
    verdict = _verdict("unit-broken", {"value": 1})
    assert verdict.status == "error" and "fault in the course" in verdict.message


# --- check() in a learner's notebook ------------------------------------------------------
def test_check_shows_the_verdict_and_never_raises(clean_learner, monkeypatch, capsys):
    monkeypatch.setenv(learner.LEARNER_ENV, "ada")
    v = variant("unit-sizes")
    assert check("unit-pages", v.pages << v.order) is None
    assert capsys.readouterr().out.startswith("✔ unit-pages passed")
    assert check("unit-pages", -1) is None  # a failure is shown, and the notebook goes on
    out = capsys.readouterr().out
    assert out.startswith("✘ unit-pages failed (0 of 2 points).") and "Reread: lecture 1" in out


def test_in_a_graded_kernel_check_judges_nothing(clean_learner, monkeypatch, capsys):
    monkeypatch.setenv("MMLAB_GRADING", "1")
    check("unit-broken", 1)  # would report a broken check if it were judged here
    assert "the grader checks this answer" in capsys.readouterr().out


def test_a_graded_kernel_reads_its_variants_from_the_grader(clean_learner, monkeypatch):
    monkeypatch.setenv(learner.GRADED_LEARNER_ENV, "ada")
    monkeypatch.setenv(learner.GRADED_VARIANTS_ENV, '{"unit-sizes": {"pages": 5, "order": [1, 2]}}')
    v = variant("unit-sizes")
    assert (v.pages, v.order, v.learner) == (5, [1, 2], "ada")
    assert dict(variant("unit-no-such-variant")) == {}


# --- feedback in a notebook links to the lecture --------------------------------------------
def test_the_sections_feedback_names_link_to_the_lecture_headings():
    from mmlab.grading.links import feedback_html, section_href

    title = "Patch 2/3: the split moves into the walk (`29e847d2ade3`)"
    href = section_href("6.3", title, "course/06-the-series.ipynb")
    assert href == "../course/06-the-series.ipynb#6.3-Patch-2/3:-the-split-moves-into-the-walk-(29e847d2ade3)"
    message = "✘ x.\nReread: lecture 4, section 4.3 'Large folios: all or nothing' (course/04-mlock.ipynb) <now>."
    page = feedback_html(message)
    assert '<a href="../course/04-mlock.ipynb#4.3-Large-folios:-all-or-nothing"' in page
    assert "&lt;now&gt;" in page and "<now>" not in page
