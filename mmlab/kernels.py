"""Kernel profiles: the behaviour that changed between the releases the course compares.

Each profile is a set of switches; each switch is read in exactly one kind of place in the
model (``if kernel.<switch>:``) and carries the upstream change that flipped it. Because
the switches are plain ``if`` statements, ``modelled_source()`` can show any model function
as one profile runs it, and ``profile_diff()`` can show what a release changed.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import textwrap
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Change:
    """An upstream change: its title and where to find it (commit hash or Message-ID)."""

    title: str
    ref: str
    note: str = ""

    def __str__(self):
        return f'"{self.title}" ({self.ref})' + (f"; {self.note}" if self.note else "")


# The switches, each with the change that turned it on (or, for the last, off).
CHANGES = {
    "split_pmd_before_walk": Change(
        "mm/rmap: integrate PMD-mapped folio splitting into pagewalk loop",
        "29e847d2ade3cdff36afe095fdbeb9b5f71a197a, in 6.11",
        "this commit removed the up-front split_huge_pmd_address() call; true means before it",
    ),
    "v6_mlock_restore_pmd": Change(
        "[PATCH v6 2/3] mm/rmap: integrate PMD-mapped folio splitting into pagewalk loop",
        "Message-Id 20240521040244.48760-3",
        "the extra mlock-restore condition under review, suggested by Baolin Wang and first posted as v5 3/4 "
        "(20240513074712.7608-4); dropped in v7 (20240610120209.66311-1)",
    ),
    "pmd_lazyfree_discard": Change(
        "mm/vmscan: avoid split lazyfree THP during shrink_folio_list()",
        "735ecdfaf4e802209caf34b7ac45adf448c54ccc, in 6.11",
        "removed again by the Nov 2026 stable fix 'mm/rmap: don't discard lazyfree THPs at PMD "
        "level' (stable 6.12.117, 7.3.2; mainline hash unverified)",
    ),
    "pmd_lazyfree_no_split": Change(
        "mm: avoid splitting pmd for lazyfree pmd-mapped THP in try_to_unmap",
        "2f9b43d617e2, in 6.15; Barry Song, v4 4/4, Message-Id 20250214093015.51024-5",
    ),
    "swapbacked_only_if_dirty": Change(
        "mm: set folio swapbacked iff folios are dirty in try_to_unmap_one",
        "faeb2831b517, in 6.15; Barry Song, v4 1/4, Message-Id 20250214093015.51024-2",
    ),
    "batched_lazyfree_unmap": Change(
        "mm: support batched unmap for lazyfree large folios during reclamation",
        "354dffd29575, in 6.15; Barry Song, v4 3/4, Message-Id 20250214093015.51024-4",
        "6.15.0 batches only a whole folio (can_batch_unmap_folio_ptes)",
    ),
    "pte_batch_partial": Change(
        "mm/rmap: fix potential out-of-bounds page table access during batched unmap",
        "ddd05742b45b, in 6.16; stable 6.15.7 as 510fe9c15d07",
        "folio_unmap_pte_batch(): batches of any length, capped at the VMA and page-table end",
    ),
    "thp_on_huge_zero_wp": Change(
        "mm: allocate THP on hugezeropage wp-fault",
        "1ced09e0331f, in 6.13; Dev Jain",
    ),
    "split_remaps_zero_subpages": Change(
        "mm: remap unused subpages to shared zeropage when splitting isolated thp",
        "b1f202060afe, in 6.12; Usama Arif's series 'mm: split underused THPs', v5 2/6, "
        "Message-Id 20240830100438.3623486-3",
        "every split of an anon folio (split_huge_page, the deferred split); not a PMD split alone",
    ),
    "reuse_large_anon_folio": Change(
        "mm: Copy-on-Write (COW) reuse support for PTE-mapped THP",
        "1da190f4d0a6, in 6.15; David Hildenbrand, Message-Id 20250303163014.1128035-14",
    ),
    "mlock_large_in_ttu": Change(
        "mm/rmap: mlock large folios in try_to_unmap_one()",
        "in 6.18; Kiryl Shutsemau, 'mm: Improve mlock tracking for large folios', PATCHv3 2/5, 23 Sep 2025",
        "mainline hash unverified",
    ),
}


@dataclass(frozen=True)
class Profile:
    """One kernel release as the model runs it. Every field is a switch named in CHANGES."""

    name: str
    summary: str
    split_pmd_before_walk: bool = False
    v6_mlock_restore_pmd: bool = False
    pmd_lazyfree_discard: bool = False
    pmd_lazyfree_no_split: bool = False
    swapbacked_only_if_dirty: bool = False
    batched_lazyfree_unmap: bool = False
    pte_batch_partial: bool = False
    thp_on_huge_zero_wp: bool = False
    split_remaps_zero_subpages: bool = False
    reuse_large_anon_folio: bool = False
    mlock_large_in_ttu: bool = False

    def __repr__(self):
        return f"<kernel profile {self.name}>"

    def switches(self) -> dict[str, bool]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in CHANGES}


_6_10 = Profile("6.10", "before the series: reclaim splits a PMD-mapped THP before the rmap walk",
                split_pmd_before_walk=True)
_6_11 = Profile("6.11", "as merged: split inside the walk (restart); clean lazyfree THP discarded at PMD level",
                pmd_lazyfree_discard=True)
_6_11_v6 = replace(_6_11, name="6.11-v6",
                   summary="the v6 posting: as 6.11, plus the extra mlock-restore condition under review",
                   v6_mlock_restore_pmd=True)
_6_15 = replace(_6_11, name="6.15",
                summary="6.15.0: batched unmap of a whole lazyfree large folio; a lazyfree PMD that cannot be "
                "discarded aborts instead of splitting",
                pmd_lazyfree_no_split=True, swapbacked_only_if_dirty=True, batched_lazyfree_unmap=True,
                thp_on_huge_zero_wp=True, split_remaps_zero_subpages=True, reuse_large_anon_folio=True)
_6_18 = replace(_6_15, name="6.18", summary="6.18.0: batches of part of a folio too (6.16); mlock tracking for "
                "large folios inside try_to_unmap_one",
                pte_batch_partial=True, mlock_large_in_ttu=True)
_6_18_44 = replace(_6_18, name="6.18.44",
                   summary="the Nov 2026 stable fix (also in 6.12.117+, 7.3.2+): no PMD-level lazyfree discard "
                   "(split, then batched PTE discard)",
                   pmd_lazyfree_discard=False, pmd_lazyfree_no_split=False)

PROFILES: dict[str, Profile] = {p.name: p for p in (_6_10, _6_11_v6, _6_11, _6_15, _6_18, _6_18_44)}

# Released kernels the live lab boots under QEMU (mmlab.live.vm), each checked against runs
# stored in tests/data/vm-*/. They are not steps of the series' story, so PROFILES (what
# the lectures walk through) leaves them out.
# 6.1 (Debian's 6.1.0-*, checked on 6.1.192): before the series, like 6.10 in every switch;
# none of the later changes was backported to 6.1.y (its Debian changelog lists none).
_6_1 = replace(_6_10, name="6.1", summary="Debian's 6.1 LTS: before the series, as 6.10")
# 6.12.117 (checked on Debian's 6.12.118): the series is in (6.11), and so is 6.12's
# b1f202060afe (a split maps unused subpages to the shared zero page:
# try_to_map_unused_to_zeropage() in mm/migrate.c); the 6.15 changes are not. The stable fix
# 'mm/rmap: don't discard lazyfree THPs at PMD level' is listed under ChangeLog-6.12.117 in
# the changelog of Debian's 6.12.118 package.
_6_12_117 = replace(_6_11, name="6.12.117",
                    summary="the 6.12 LTS from 6.12.117: the series, less its PMD-level discard (the 2026 stable fix)",
                    pmd_lazyfree_discard=False, split_remaps_zero_subpages=True)
VM_PROFILES: dict[str, Profile] = {p.name: p for p in (_6_1, _6_12_117)}
ALL_PROFILES: dict[str, Profile] = PROFILES | VM_PROFILES


def get_profile(name: str) -> Profile:
    for profiles in (PROFILES, VM_PROFILES):  # looked up at each call, so a test may swap a profile in
        if name in profiles:
            return profiles[name]
    raise ValueError(f"unknown kernel profile {name!r}; choose one of: {', '.join(ALL_PROFILES)}")


def _version(text: str) -> tuple[int, ...] | None:
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?(?=$|[^.\d])", text)
    return tuple(int(x) for x in found.groups() if x is not None) if found else None


def profile_for(release: str, version: str | None = None) -> Profile:
    """The profile a kernel should behave like, from its ``uname -r`` or, for Debian's,
    its ``uname -v`` (``version``, which names the upstream release: "... Debian 6.1.192-3 ...").

    A stable profile (6.12.117) covers later releases of its own series only; otherwise
    the newest mainline profile (6.11) not newer than the kernel's series. Stable
    branches fork from mainline, so 6.13 behaves like 6.11, not like 6.12.117."""
    debian = re.search(r"Debian (\d+\.\d+\.\d+)", version or "")
    wanted = _version(debian.group(1) if debian else release)
    if wanted is None:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    versions = {name: _version(name) for name in ALL_PROFILES if re.fullmatch(r"[\d.]+", name)}
    stable = [n for n, v in versions.items() if len(v) == 3 and v[:2] == wanted[:2] and v <= wanted]
    mainline = [n for n, v in versions.items() if len(v) == 2 and v <= wanted[:2]]
    candidates = stable or mainline or [min(versions, key=versions.get)]
    return ALL_PROFILES[max(candidates, key=versions.get)]


def changes_between(a: str, b: str) -> list[tuple[str, bool, bool, Change]]:
    """The switches that differ between two profiles: (switch, in a, in b, the change)."""
    pa, pb = get_profile(a).switches(), get_profile(b).switches()
    return [(k, pa[k], pb[k], CHANGES[k]) for k in pa if pa[k] != pb[k]]


def _switch_test(test: ast.expr) -> tuple[str | None, bool]:
    """If ``test`` is ``kernel.X`` or ``not kernel.X``, return (X, negated)."""
    negated = False
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, negated = test.operand, True
    if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "kernel":
        if test.attr in CHANGES:
            return test.attr, negated
    return None, False


def _resolve_one(lines: list[str], profile: Profile) -> bool:
    """Replace the first ``if kernel.X:`` block in ``lines`` by the branch the profile takes."""
    tree = ast.parse("\n".join(lines))
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        switch, negated = _switch_test(node.test)
        if switch is None:
            continue
        header_end = node.test.end_lineno  # the line holding the colon
        body = (header_end + 1, node.body[-1].end_lineno)
        if getattr(profile, switch) != negated:
            start, end = body
        elif node.orelse:
            else_line = next(i for i in range(node.orelse[0].lineno - 1, body[1], -1)
                             if lines[i - 1].strip() == "else:")
            start, end = else_line + 1, node.orelse[-1].end_lineno
        else:
            start, end = 1, 0
        chosen = textwrap.dedent("\n".join(lines[start - 1:end])) if end >= start else ""
        indent = lines[node.lineno - 1][: len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())]
        replacement = [indent + line if line else line for line in chosen.splitlines()]
        if not replacement and _only_statement(tree, node):
            replacement = [indent + "pass"]  # the block it sat in would be left empty
        lines[node.lineno - 1:(node.orelse[-1].end_lineno if node.orelse else body[1])] = replacement
        return True
    return False


def _only_statement(tree: ast.AST, node: ast.stmt) -> bool:
    """Is ``node`` the only statement of the block (body, else, ...) that holds it?"""
    for parent in ast.walk(tree):
        for block in (getattr(parent, name, None) for name in ("body", "orelse", "finalbody")):
            if isinstance(block, list) and any(stmt is node for stmt in block):
                return len(block) == 1
    return False


def modelled_source(func, profile: str | Profile) -> str:
    """The source of a model function as ``profile`` runs it: every ``if kernel.X:`` is
    replaced by the branch that profile takes."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    lines = textwrap.dedent(inspect.getsource(func)).splitlines()
    while _resolve_one(lines, profile):
        pass
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def switches_read(func) -> list[str]:
    """The profile switches ``func`` itself tests (``kernel.X``), in the order CHANGES lists them."""
    found = set(re.findall(r"\bkernel\.(\w+)\b", inspect.getsource(func)))
    return [name for name in CHANGES if name in found]


def profile_diff(func, a: str, b: str) -> str:
    """A unified diff of a model function between two profiles, headed by the changes that
    make the difference: only the switches the function reads (others change other functions)."""
    reads = set(switches_read(func))
    head = [f"# {switch}: {'on' if in_b else 'off'} in {b}, {'on' if in_a else 'off'} in {a}: {change}"
            for switch, in_a, in_b, change in changes_between(a, b) if switch in reads]
    diff = difflib.unified_diff(
        modelled_source(func, a).splitlines(), modelled_source(func, b).splitlines(),
        f"{func.__name__} ({a})", f"{func.__name__} ({b})", lineterm="", n=3,
    )
    return "\n".join(head + list(diff)) + "\n"
