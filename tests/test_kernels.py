"""mmlab.kernels: the profiles, their switches, and the model's source as each profile runs it.

The structural facts asserted about try_to_unmap_one() per release come from the upstream
commits listed in course/sources.ipynb (and 6.12.117 mm/rmap.c for the form after the Nov 2026
stable fix).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

import mmlab
import mmlab.include
import mmlab.mm
from mmlab import PROFILES, Machine, modelled_source, profile_diff
from mmlab.kernels import CHANGES, changes_between, get_profile
from mmlab.mm.rmap import try_to_unmap_one
from mmlab.state import kernel, running


def model_functions_with_switches():
    """Every function of the model (mmlab.include and mmlab.mm) that reads a profile switch."""
    found = []
    for package in (mmlab.include, mmlab.mm):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for _, func in inspect.getmembers(module, inspect.isfunction):
                if func.__module__ == module.__name__ and "kernel." in inspect.getsource(func):
                    found.append(func)
    return found


SWITCHING = model_functions_with_switches()


def test_every_profile_sets_exactly_the_switches_in_changes():
    for profile in PROFILES.values():
        assert set(profile.switches()) == set(CHANGES)
    for change in CHANGES.values():
        assert change.title and change.ref


def test_every_switch_is_read_by_the_model():
    source = "\n".join(inspect.getsource(f) for f in SWITCHING)
    for switch in CHANGES:
        assert re.search(rf"if (not )?kernel\.{switch}:", source), f"no 'if kernel.{switch}:' in the model"


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("func", SWITCHING, ids=lambda f: f.__name__)
def test_modelled_source_resolves_every_switch_into_valid_python(func, name):
    text = modelled_source(func, name)
    ast.parse(text)
    assert not re.search(r"kernel\.(" + "|".join(CHANGES) + r")\b", text)


def test_modelled_try_to_unmap_one_is_each_releases_control_flow():
    # 6.10: split_huge_pmd_address() before the walk, no PMD handling inside it (§1.4).
    old = modelled_source(try_to_unmap_one, "6.10")
    assert old.index("split_huge_pmd_address(") < old.index("while page_vma_mapped_walk(")
    assert "split_huge_pmd_locked(" not in old and "unmap_huge_pmd_locked(" not in old
    # 6.11: inside the walk, try the PMD-level discard, else split under the lock and restart (§1.5).
    merged = modelled_source(try_to_unmap_one, "6.11")
    assert "split_huge_pmd_address(" not in merged
    assert merged.index("unmap_huge_pmd_locked(") < merged.index("split_huge_pmd_locked(")
    assert "page_vma_mapped_walk_restart(" in merged and "folio_unmap_pte_batch(" not in merged
    # 6.15.0: batched PTE unmap of a whole lazyfree large folio only (354dffd29575); one
    # assignment of nr_pages per step, no "nr_pages = 1" that the batch then overwrites.
    first_batch = modelled_source(try_to_unmap_one, "6.15")
    assert "can_batch_unmap_folio_ptes(" in first_batch and "folio_unmap_pte_batch(" not in first_batch
    assert first_batch.count("nr_pages = ") == 1
    # 6.16 (ddd05742b45b): folio_unmap_pte_batch(), batches of part of a folio.
    assert "folio_unmap_pte_batch(" in modelled_source(try_to_unmap_one, "6.18")
    # 6.18.44: the PMD-level discard is gone again, the split inside the walk stays (§2.2).
    fixed = modelled_source(try_to_unmap_one, "6.18.44")
    assert "unmap_huge_pmd_locked(" not in fixed and "split_huge_pmd_locked(" in fixed


def test_modelled_source_takes_a_profile_object_too():
    assert modelled_source(try_to_unmap_one, PROFILES["6.11"]) == modelled_source(try_to_unmap_one, "6.11")


def test_profile_diff_names_the_changes_between_two_profiles():
    diff = profile_diff(try_to_unmap_one, "6.11", "6.11-v6")
    header = [line for line in diff.splitlines() if line.startswith("# ")]
    assert len(header) == 1 and header[0].startswith("# v6_mlock_restore_pmd: on in 6.11-v6, off in 6.11")
    assert "20240521040244.48760-3" in header[0]
    assert any(line.startswith("+") and "TTU_SPLIT_HUGE_PMD" in line for line in diff.splitlines()[3:])


def test_profile_diff_heads_only_with_the_switches_the_function_reads():
    # 6.11 -> 6.15 also turns on thp_on_huge_zero_wp, which only the huge-zero write fault reads.
    header = [line for line in profile_diff(try_to_unmap_one, "6.11", "6.15").splitlines() if line.startswith("# ")]
    assert [line.split(":")[0] for line in header] == [
        "# pmd_lazyfree_no_split", "# swapbacked_only_if_dirty", "# batched_lazyfree_unmap"]
    assert "2f9b43d617e2" in header[0]


def test_a_profile_does_not_differ_from_itself():
    assert changes_between("6.15", "6.15") == []
    assert profile_diff(try_to_unmap_one, "6.15", "6.15").strip() == ""


def test_changes_between_lists_each_switch_that_differs():
    assert [(s, a, b) for s, a, b, _ in changes_between("6.18", "6.18.44")] == [
        ("pmd_lazyfree_discard", True, False), ("pmd_lazyfree_no_split", True, False)]


@pytest.mark.parametrize("bad", ["6.12", "", "latest"])
def test_an_unknown_profile_is_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match="choose one of: 6.10, 6.11-v6"):
        get_profile(bad)
    with pytest.raises(ValueError, match="unknown kernel profile"):
        Machine(kernel=bad)


def test_kernel_reads_the_running_machines_profile_and_nothing_outside_one():
    old, new = Machine(kernel="6.10"), Machine(kernel="6.18.44")
    with running(old):
        assert kernel.split_pmd_before_walk and kernel.name == "6.10"
        with running(new):
            assert not kernel.split_pmd_before_walk and kernel.mlock_large_in_ttu
        assert kernel.split_pmd_before_walk and not kernel.mlock_large_in_ttu
    with pytest.raises(RuntimeError, match="no Machine is running"):
        _ = kernel.split_pmd_before_walk
