"""The catalogue: every named scenario, registered with ``@scenario``. Sizes are a few THPs,
except where a scenario reproduces the 64 MiB (32 THP) runs of the host experiments
(course/sources.ipynb, section 7).
Views are named "p" (the first process) and "c" (a forked child).
"""

from __future__ import annotations

from collections.abc import Callable

from ..uapi import (
    HPAGE_PMD_SIZE,
    MADV_COLD,
    MADV_COLLAPSE,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_PAGEOUT,
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PROT_READ,
)
from .run import Run, Scenario

THP = HPAGE_PMD_SIZE
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, shows: str, needs: tuple[str, ...] = ("thp",)):
    """Register the decorated function as a scenario."""

    def register(body: Callable[[Run], None]) -> Callable[[Run], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} is defined twice")
        SCENARIOS[name] = Scenario(name, shows, body, needs)
        return body

    return register


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


BIG = 32 * THP  # 64 MiB


@scenario("thp-fault", "Touching a MADV_HUGEPAGE range faults in one PMD-mapped 2 MiB THP per slot.")
def thp_fault(run: Run):
    p, a = run.touched(BIG)


@scenario(
    "lazyfree-reclaim",
    "MADV_FREE makes clean THPs lazyfree (no split); MADV_PAGEOUT then frees them without "
    "swap, and the memory reads back as zeros.",
    needs=("thp", "pageout"),
)
def lazyfree_reclaim(run: Run):
    p, a = run.touched(BIG)
    run.step("MADV_FREE", p.madvise, a, BIG, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, BIG, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "lazyfree-rewrite",
    "Writing a lazyfree THP again (no fault: the PMD just becomes dirty) makes reclaim keep "
    "it and turn it back into normal swap-backed memory.",
    needs=("thp", "pageout"),
)
def lazyfree_rewrite(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("rewrite", p.write, a, 2 * THP, 2)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "lazyfree-rewrite-twice",
    "With no swap, a second MADV_PAGEOUT of the re-dirtied (now swap-backed) THPs cannot "
    "swap them out and falls back to splitting the folios.",
    needs=("thp", "pageout", "no_swap"),
)
def lazyfree_rewrite_twice(run: Run):
    lazyfree_rewrite(run)
    p, a, _ = run.views["p"]
    run.step("MADV_PAGEOUT again", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "lazyfree-partial",
    "MADV_FREE of half a THP must split the folio (a folio is lazyfree as a whole); reclaim "
    "then frees only the lazyfree half.",
    needs=("thp", "pageout"),
)
def lazyfree_partial(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_FREE first half of THP 0", p.madvise, a, THP // 2, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read freed half", p.read, a)
    run.step("read kept half", p.read, a + THP // 2)


@scenario(
    "lazyfree-small",
    "The same lazyfree reclaim with 4 KiB pages (MADV_NOHUGEPAGE): 512 small folios per 2 MiB, no THP counters move.",
    needs=("pageout",),
)
def lazyfree_small(run: Run):
    p, a = run.touched(2 * THP, huge=False)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "mlock-then-free",
    "An mlocked range refuses MADV_FREE and MADV_PAGEOUT with EINVAL: the THPs stay "
    "swap-backed, mlocked and unevictable.",
    needs=("thp", "pageout", "mlock"),
)
def mlock_then_free(run: Run):
    p, a = run.touched(2 * THP)
    run.step("mlock", p.mlock, a, 2 * THP)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("munlock", p.munlock, a, 2 * THP)


@scenario(
    "free-then-mlock",
    "mlock() after MADV_FREE: the lazyfree THPs become mlocked and unevictable, and mlock's "
    "populate dirties the PMDs, so after munlock reclaim keeps the data.",
    needs=("thp", "pageout", "mlock"),
)
def free_then_mlock(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("mlock", p.mlock, a, 2 * THP)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("munlock", p.munlock, a, 2 * THP)
    run.step("MADV_PAGEOUT after munlock", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "free-then-mlock-onfault",
    "mlock2(MLOCK_ONFAULT) after MADV_FREE locks without populating, so the PMDs stay clean: "
    "after munlock, reclaim discards the THPs.",
    needs=("thp", "pageout", "mlock"),
)
def free_then_mlock_onfault(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("mlock2 ONFAULT", p.mlock2, a, 2 * THP, MLOCK_ONFAULT)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("munlock", p.munlock, a, 2 * THP)
    run.step("MADV_PAGEOUT after munlock", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "mlock-onfault",
    "MLOCK_ONFAULT locks nothing up front; each THP is mlocked as it is faulted in.",
    needs=("thp", "mlock"),
)
def mlock_onfault(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("mlock2 ONFAULT", p.mlock2, a, 2 * THP, MLOCK_ONFAULT)
    run.step("touch THP 0", p.write, a, THP, 1)
    run.step("munlock", p.munlock, a, 2 * THP)


@scenario(
    "locked-boundary",
    "mlock of half a THP splits the VMA and the PMD; the THP now crosses a VM_LOCKED "
    "boundary and is not mlocked, so reclaim of the unlocked half splits the folio.",
    needs=("thp", "pageout", "mlock"),
)
def locked_boundary(run: Run):
    p, a = run.touched(2 * THP)
    run.step("mlock first half of THP 0", p.mlock, a, THP // 2)
    run.step("MADV_FREE unlocked part", p.madvise, a + THP // 2, THP + THP // 2, MADV_FREE)
    run.step("MADV_PAGEOUT unlocked part", p.madvise, a + THP // 2, THP + THP // 2, MADV_PAGEOUT)
    run.step("read locked half", p.read, a)
    run.step("munlock", p.munlock, a, THP // 2)


@scenario(
    "fork-shared",
    "After fork() parent and child map the same THPs (mapcount 2): MADV_FREE and "
    "MADV_PAGEOUT skip folios that may be shared, until the child exits.",
    needs=("thp", "pageout"),
)
def fork_shared(run: Run):
    p, a = run.touched(2 * THP)
    c = run.step("fork", p.fork)
    run.watch("c", c, a, 2 * THP)
    run.step("MADV_FREE in parent", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT in parent", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("child exits", c.exit)
    run.step("MADV_FREE in parent again", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT in parent again", p.madvise, a, 2 * THP, MADV_PAGEOUT)


@scenario(
    "fork-cow",
    "Writing one byte of a THP shared with a child: copy-on-write splits the parent's PMD "
    "and copies a single 4 KiB page, not the 2 MiB folio.",
)
def fork_cow(run: Run):
    p, a = run.touched(2 * THP)
    c = run.step("fork", p.fork)
    run.watch("c", c, a, 2 * THP)
    run.step("parent writes one page", p.write, a, PAGE_SIZE, 3)
    run.step("child reads", c.read, a)
    run.step("child exits", c.exit)


@scenario(
    "dontneed-partial",
    "MADV_DONTNEED of half a THP splits the PMD, zaps half the PTEs and queues the folio for "
    "a deferred split; the rest stays mapped.",
)
def dontneed_partial(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_DONTNEED first half of THP 0", p.madvise, a, THP // 2, MADV_DONTNEED)
    run.step("read zapped", p.read, a)
    run.step("read kept", p.read, a + THP // 2)


@scenario(
    "munmap-half",
    "munmap of half a THP splits the PMD, frees nothing yet and queues the folio for a deferred split.",
)
def munmap_half(run: Run):
    p, a = run.touched(2 * THP)
    run.step("munmap second half of THP 0", p.munmap, a + THP // 2, THP // 2)


@scenario(
    "mprotect-part",
    "mprotect of part of a THP splits the VMA, so the PMD is split and the folio is mapped by PTEs in two VMAs.",
)
def mprotect_part(run: Run):
    p, a = run.touched(2 * THP)
    run.step("mprotect first half of THP 0 read-only", p.mprotect, a, THP // 2, PROT_READ)
    run.step("write to it", p.write, a, PAGE_SIZE, 2)


@scenario(
    "plain-thp-reclaim",
    "MADV_PAGEOUT of ordinary (not lazyfree) THPs with no swap: swap allocation fails, the "
    "folios are split as a fallback and nothing is freed.",
    needs=("thp", "pageout", "no_swap"),
)
def plain_thp_reclaim(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read", p.read, a)


@scenario(
    "huge-zero-page",
    "A read fault in an untouched THP range maps the shared huge zero page; the first write "
    "then faults in a fresh THP.",
    needs=("thp", "huge_zero_page"),
)
def huge_zero_page(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("read THP 0", p.read, a)
    run.step("write THP 0", p.write, a, PAGE_SIZE, 1)


@scenario(
    "madv-cold",
    "MADV_COLD clears the accessed bits of PMD-mapped THPs, and moves THPs that failed reclaim (and "
    "so were activated) back to the inactive list whole, without splitting them.",
    needs=("thp", "cold", "pageout"),
)
def madv_cold(run: Run):
    p, a = run.touched(2 * THP)
    run.step("MADV_COLD", p.madvise, a, 2 * THP, MADV_COLD)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("rewrite", p.write, a, 2 * THP, 2)
    run.step("MADV_PAGEOUT (kept, activated)", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("MADV_COLD again", p.madvise, a, 2 * THP, MADV_COLD)


@scenario(
    "pinned-lazyfree",
    "A GUP pin (an extra reference) on a lazyfree THP makes reclaim give up on it; once "
    "released, the next MADV_PAGEOUT frees it.",
    needs=("thp", "pageout"),
)
def pinned_lazyfree(run: Run):
    p, a = run.touched(2 * THP)
    pin = run.step("pin a page of THP 0", p.pin, a, PAGE_SIZE)
    run.step("MADV_FREE", p.madvise, a, 2 * THP, MADV_FREE)
    run.step("MADV_PAGEOUT", p.madvise, a, 2 * THP, MADV_PAGEOUT)
    run.step("read pinned THP", p.read, a)
    run.step("release the pin", pin.release)
    run.step("MADV_PAGEOUT again", p.madvise, a, 2 * THP, MADV_PAGEOUT)


@scenario(
    "byte-exact",
    "Writes and reads are byte-exact: four bytes written across the boundary of two THPs fault "
    "in both, and the bytes around them still read 0.",
)
def byte_exact(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("write 4 bytes across the THP boundary", p.write, a + THP - 2, 4, 5)
    run.step("read the byte before", p.read, a + THP - 3)
    run.step("read the first byte written", p.read, a + THP - 2)
    run.step("read the last byte written", p.read, a + THP + 1)
    run.step("read the byte after", p.read, a + THP + 2)
    run.step("write 3 bytes across a page boundary in THP 1", p.write, a + THP + PAGE_SIZE - 1, 3, 6)
    run.step("read across the page boundary", p.read, a + THP + PAGE_SIZE + 1)
    run.step("read the old byte there", p.read, a + THP + 1)


@scenario(
    "zero-subpages-on-split",
    "Splitting a THP's folio (partial MADV_COLD, MADV_PAGEOUT) maps the shared zero page for every "
    "subpage holding only zeros and frees it (since 6.12); splitting only the PMD (partial "
    "MADV_DONTNEED) keeps them.",
    needs=("thp", "cold", "pageout"),
)
def zero_subpages_on_split(run: Run):
    p = run.spawn()
    a = run.region(p, 3 * THP)
    run.step("write one byte in each THP", p.write, a + 100, 1, 7)
    run.step("write one byte in THP 1", p.write, a + THP + 100, 1, 7)
    run.step("write one byte in THP 2", p.write, a + 2 * THP + 100, 1, 7)
    run.step("MADV_DONTNEED second half of THP 0", p.madvise, a + THP // 2, THP // 2, MADV_DONTNEED)
    run.step("MADV_COLD first half of THP 1", p.madvise, a + THP, THP // 2, MADV_COLD)
    run.step("MADV_PAGEOUT first half of THP 2", p.madvise, a + 2 * THP, THP // 2, MADV_PAGEOUT)
    run.step("read the byte kept", p.read, a + THP + 100)
    run.step("read a zero page", p.read, a + THP + PAGE_SIZE)


@scenario(
    "cow-reuse",
    "After fork() the parent's write copies one 4 KiB page out of the shared THP; once the child "
    "has exited, a write to another page of it reuses the THP in place (since 6.15), no copy.",
)
def cow_reuse(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    c = run.step("fork", p.fork)
    run.step("parent writes page 0", p.write, a, PAGE_SIZE, 2)
    run.step("child exits", c.exit)
    run.step("parent writes page 1", p.write, a + PAGE_SIZE, PAGE_SIZE, 3)
    run.step("parent writes THP 1", p.write, a + THP, PAGE_SIZE, 3)
    run.step("read page 1", p.read, a + PAGE_SIZE)


@scenario(
    "zap-keeps-folio-clean",
    "Zapping a dirty PTE of a lazyfree THP (MADV_DONTNEED of one page) does not dirty the folio: "
    "MADV_PAGEOUT then splits it and discards every remaining page.",
    needs=("thp", "pageout"),
)
def zap_keeps_folio_clean(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch THP 0", p.write, a, THP, 1)
    run.step("MADV_FREE THP 0", p.madvise, a, THP, MADV_FREE)
    run.step("mprotect page 0 read-only (splits the PMD)", p.mprotect, a, PAGE_SIZE, PROT_READ)
    run.step("write page 1 (dirty PTE)", p.write, a + PAGE_SIZE, PAGE_SIZE, 2)
    run.step("MADV_DONTNEED page 1", p.madvise, a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)
    run.step("MADV_PAGEOUT THP 0", p.madvise, a, THP, MADV_PAGEOUT)
    run.step("read page 2", p.read, a + 2 * PAGE_SIZE)


@scenario(
    "mremap-thp",
    "mremap() moves a THP whole (one PMD) to a 2 MiB aligned destination, but splits its PMD and "
    "moves 512 PTEs to an unaligned one; the errors are the kernel's.",
)
def mremap_thp(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    b = run.region(p, 4 * THP, name="b", watch="d")
    run.step("touch", p.write, a, 2 * THP, 1)
    run.step("mark a byte", p.write, a + 5, 1, 9)
    run.step("move THP 0 to b (aligned)", p.mremap, a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b)
    run.step("read the byte moved", p.read, b + 5)
    run.step("move THP 1 to b+2 MiB+4 KiB (unaligned)", p.mremap, a + THP, THP, THP,
             MREMAP_MAYMOVE | MREMAP_FIXED, b + 2 * THP + PAGE_SIZE)  # fmt: skip
    run.step("read it there", p.read, b + 2 * THP + PAGE_SIZE)
    run.step("MREMAP_FIXED without MREMAP_MAYMOVE", p.mremap, b, PAGE_SIZE, PAGE_SIZE, MREMAP_FIXED, b + THP)
    run.step("overlapping move", p.mremap, b, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b + PAGE_SIZE)
    run.step("move from where nothing is mapped", p.mremap, a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, b + THP)
    run.step("shrink the moved THP to 1 MiB", p.mremap, b, THP, THP // 2, 0, 0)


@scenario(
    "madv-collapse",
    "MADV_COLLAPSE copies 4 KiB pages into a new THP now; it refuses a VM_NOHUGEPAGE range and an "
    "empty one (EINVAL), and one holding a pinned page (EAGAIN), after collapsing what it can.",
)
def madv_collapse(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP, huge=False)
    run.step("touch (small pages)", p.write, a, 2 * THP, 1)
    run.step("MADV_COLLAPSE a VM_NOHUGEPAGE range", p.madvise, a, 2 * THP, MADV_COLLAPSE)
    run.step("MADV_HUGEPAGE", p.madvise, a, 2 * THP, MADV_HUGEPAGE)
    pin = run.step("pin a page of THP 1", p.pin, a + THP, PAGE_SIZE)
    run.step("MADV_COLLAPSE", p.madvise, a, 2 * THP, MADV_COLLAPSE)
    run.step("release the pin", pin.release)
    run.step("MADV_COLLAPSE again", p.madvise, a, 2 * THP, MADV_COLLAPSE)
    run.step("read", p.read, a + THP)
    run.step("MADV_DONTNEED THP 0", p.madvise, a, THP, MADV_DONTNEED)
    run.step("MADV_COLLAPSE the empty THP 0", p.madvise, a, THP, MADV_COLLAPSE)


@scenario(
    "mlockall",
    "mlockall(MCL_CURRENT) locks and populates every mapping (MCL_ONFAULT: only what is present); "
    "MCL_FUTURE makes the next mmap() locked and populated with 4 KiB pages.",
    needs=("thp", "mlock"),
)
def mlockall(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch THP 0", p.write, a, THP, 1)
    run.step("mlockall(MCL_ONFAULT) alone", p.mlockall, MCL_ONFAULT)
    run.step("mlockall(MCL_CURRENT)", p.mlockall, MCL_CURRENT)
    run.step("munlockall", p.munlockall)
    run.step("MADV_DONTNEED THP 1", p.madvise, a + THP, THP, MADV_DONTNEED)
    run.step("mlockall(MCL_CURRENT|MCL_ONFAULT)", p.mlockall, MCL_CURRENT | MCL_ONFAULT)
    run.step("touch THP 1", p.write, a + THP, PAGE_SIZE, 2)
    run.step("munlockall again", p.munlockall)
    run.step("mlockall(MCL_FUTURE)", p.mlockall, MCL_FUTURE)
    run.region(p, 2 * THP, name="b", watch="f")
    run.step("munlockall at last", p.munlockall)


@scenario(
    "pin-and-fork",
    "pin() (FOLL_WRITE) after fork() breaks copy-on-write first: the parent gets its own copy of the "
    "page; fork() after pin() copies every page of a pinned THP into the child at once.",
)
def pin_and_fork(run: Run):
    p = run.spawn()
    a = run.region(p, 2 * THP)
    run.step("touch", p.write, a, 2 * THP, 1)
    c = run.step("fork", p.fork)
    run.watch("c", c, a, 2 * THP)
    pin = run.step("parent pins a page of THP 0", p.pin, a, PAGE_SIZE)
    run.step("child exits", c.exit)
    d = run.step("fork again, with THP 0 pinned", p.fork)
    run.watch("c2", d, a, 2 * THP)
    run.step("release the pin", pin.release)
    run.step("second child exits", d.exit)
