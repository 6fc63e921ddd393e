"""mmlab.viz diagrams: DOT text from model state (determinism, what each diagram shows),
rendering with and without Graphviz, and the rich display of model objects."""

import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.formatters import DisplayFormatter

import mmlab
from mmlab import (
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_PAGEOUT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PROT_READ,
    Machine,
    MiB,
)
from mmlab.viz import (
    INSTALL_HINT,
    Diagram,
    Explorer,
    folio_dot,
    lru_dot,
    page_tables_dot,
    render,
    rmap_dot,
    slot_chars,
    step_dot,
)
from mmlab.viz.entries import folio_mappings
from mmlab.viz.explorer import ACTIONS

THP = 2 * MiB


def thp_process(kernel="6.11", size=8 * MiB):
    m = Machine(kernel=kernel)
    p = m.spawn()
    a = p.mmap(size)
    p.madvise(a, size, MADV_HUGEPAGE)
    return m, p, a


def mixed_state(kernel="6.11"):
    """THPs, a PTE-mapped THP with a hole, a lazyfree THP, the huge zero page, and a fork
    whose child wrote one page of a shared THP."""
    m, p, a = thp_process(kernel, 16 * MiB)
    p.write(a, 8 * MiB, value=7)
    p.madvise(a + 256 * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED)  # splits the PMD of slot 0
    p.madvise(a + 2 * THP, THP, MADV_FREE)
    p.read(a + 5 * THP)  # a read fault in an empty THP-able slot: the huge zero page
    child = p.fork()
    child.write(a + 3 * THP, PAGE_SIZE, value=9)
    return m, p, child, a


def node_names(dot: str) -> list[str]:
    return re.findall(r'^  "([^"]+)" \[', dot, flags=re.M)


# ---------------------------------------------------------------- determinism


def all_dots(m, p, child, a):
    folio = m.folios[0x100600]  # slot 3, shared with the child
    return [page_tables_dot(p, a, 16 * MiB), page_tables_dot(child), folio_dot(folio), rmap_dot(folio), lru_dot(m),
            step_dot(m.trace[-2].folio, m.trace[-1].folio, m.trace[-1].function)]


def test_the_same_state_gives_byte_identical_dot_in_two_machines():
    first, second = all_dots(*mixed_state()), all_dots(*mixed_state())
    assert first == second
    # Two machines hold different Python objects, so any name taken from id() would differ.
    assert all(len(dot) > 200 for dot in first)


def test_node_names_come_from_model_identities():
    m, p, child, a = mixed_state()
    names = node_names(page_tables_dot(p, a, 16 * MiB)) + node_names(rmap_dot(m.folios[0x100600]))
    assert set(names) >= {"mm_1000", "pmd_1000", "pte_1000_7f0000200000", "folio_100000", "huge_zero_page",
                          "deposit_1000_7f0000400000", "anon_vma_1", "vma_1001_7f0000200000", "mm_1001"}
    for name in names:
        assert re.fullmatch(r"[a-z_]+(_[0-9a-f]+)*", name), name


# ---------------------------------------------------------------- page tables


def test_page_tables_show_runs_of_like_ptes_and_the_hole():
    m, p, child, a = mixed_state()
    dot = page_tables_dot(p, a, THP)
    # MADV_DONTNEED of page 256 split the PMD: pages 0-255 and 257-511 stay, dirty; the fork
    # made them read-only (copy on write).
    assert "PTE 0-255</td><td align=\"left\">pages 0-255" in dot
    assert "PTE 256</td><td align=\"left\" colspan=\"2\">none" in dot
    assert "PTE 257-511</td><td align=\"left\">pages 257-511" in dot
    assert dot.count("ro, dirty, accessed") == 2


def test_page_tables_show_huge_pmds_deposited_tables_and_the_huge_zero_page():
    m, p, child, a = mixed_state()
    dot = page_tables_dot(p, a, 16 * MiB, expand=8)
    # MADV_FREE cleared the dirty and accessed bits; the fork write-protected every entry.
    assert '"pmd_1000":"s7f0000600000" -> "folio_100400" [label="ro"]' in dot
    assert '"pmd_1000":"s7f0000c00000" -> "huge_zero_page" [label="ro, accessed"]' in dot
    deposits = re.findall(r'"(deposit_1000_[0-9a-f]+)"', dot)
    huge = [s for s in range(8) if type(p.mm.pmds.get((a >> 21) + s)).__name__ == "PmdHuge"]
    assert len(set(deposits)) == len(huge) == 4


def test_large_ranges_are_summarised_per_slot():
    m, p, a = thp_process(size=64 * MiB)
    p.write(a, 64 * MiB)
    dot = page_tables_dot(p, a, 64 * MiB)
    assert "PMD-mapped THP (x31)" in dot  # the first slot is drawn in full, the other 31 share one row
    assert len([n for n in node_names(dot) if n.startswith("folio_")]) == 1


def test_the_expanded_slots_are_the_first_of_each_kind():
    m, p, a = thp_process(size=16 * MiB)
    p.write(a, 16 * MiB)
    p.madvise(a + 4 * THP, PAGE_SIZE, MADV_DONTNEED)
    dot = page_tables_dot(p, a, 16 * MiB, expand=2)
    assert slot_chars(p, a, 16 * MiB) == "HHHHtHHH"
    assert f"pte_1000_{a + 4 * THP:x}" in node_names(dot)
    assert dot.count("PMD-mapped THP (x3)") == 2  # slots 1-3 and 5-7


def test_a_live_process_is_refused_with_a_hint():
    class LiveProcess:
        pid = 1

    with pytest.raises(TypeError, match="thp_map"):
        page_tables_dot(LiveProcess(), 0, THP)


def test_a_range_needs_both_its_ends():
    m, p, a = thp_process()
    with pytest.raises(ValueError, match="both addr and length"):
        page_tables_dot(p, a)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 7), st.integers(1, 8)), max_size=8))
def test_slot_chars_agree_with_thp_map(actions):
    explorer = Explorer("6.11", 8 * MiB)
    for name, slot, slots in actions:
        if name in ("unpin", "exit") or not explorer.processes:
            continue
        explorer.do(name, offset=slot * MiB, length=slots * MiB // 2)
    for p in explorer.processes:
        assert slot_chars(p, explorer.addr, 8 * MiB) == p.thp_map(explorer.addr, 8 * MiB)


# ---------------------------------------------------------------- folio, rmap, LRU, step


def test_folio_dot_lists_every_mapping_and_page_mapcounts_after_fork():
    m, p, child, a = mixed_state()
    folio = m.folios[0x100600]  # slot 3: the parent maps it by PMD; the child wrote page 0
    dot = folio_dot(folio)
    assert "PMD at 0x7f0000800000" in dot and "mm 1000 maps it" in dot
    assert "511 PTE(s) from 0x7f0000801000" in dot and "pages 1-511" in dot and "mm 1001 maps it" in dot
    assert "0: 1, 1-511: 2" in dot


def test_rmap_dot_follows_folio_anon_vma_chain_vma_mm_across_fork():
    m, p, child, a = mixed_state()
    dot = rmap_dot(m.folios[0x100600])
    assert '"folio_100600" -> "anon_vma_1"' in dot
    assert dot.count('-> "vma_1000_7f0000200000" [label="vma"]') == 1
    assert dot.count('-> "vma_1001_7f0000200000" [label="vma"]') == 2  # the parent's anon_vma and its own
    assert '"anon_vma_2" -> "anon_vma_1"' in dot and 'label="parent"' in dot
    assert '"vma_1001_7f0000200000" -> "mm_1001"' in dot
    assert "PMD: pages 0-511" in dot and "PTE: pages 1-511" in dot


def test_rmap_dot_of_the_zero_page_says_it_is_not_reverse_mapped():
    m, p, child, a = mixed_state()
    assert "not reverse-mapped" in rmap_dot(m.huge_zero_folio)
    assert "not reverse-mapped" in folio_dot(m.huge_zero_folio)


def test_lru_dot_shows_lazyfree_folios_on_the_inactive_file_list():
    m, p, a = thp_process()
    p.write(a, 8 * MiB)
    p.madvise(a, 2 * THP, MADV_FREE)
    dot = lru_dot(m)
    assert "inactive_file: 2 folio(s), 1024 pages" in dot
    assert "inactive_anon: 2 folio(s), 1024 pages" in dot
    p.madvise(a, 2 * THP, MADV_PAGEOUT)
    assert "inactive_file: 0 folio(s), 0 pages" in lru_dot(m)


def test_lru_diagram_stands_in_two_columns_that_fit_a_notebook():
    m, p, a = thp_process()
    p.write(a, 8 * MiB)
    p.madvise(a, THP, MADV_FREE)
    p.mlock(a + THP, THP)
    dot = lru_dot(m)
    assert '{ rank=same; "lru_inactive_anon"; "lru_active_anon"; "lru_unevictable"; }' in dot
    assert '{ rank=same; "lru_inactive_file"; "lru_active_file"; }' in dot
    width_pt = float(re.search(r'viewBox="[0-9.]+ [0-9.]+ ([0-9.]+)', render.svg(dot)).group(1))
    assert width_pt < 720  # drawn at full size: no scaling down to the 10-inch limit


def test_step_dot_highlights_what_changed():
    m, p, a = thp_process()
    p.write(a, THP)
    folio = m.folios[0x100000]
    before = folio.snapshot()
    p.madvise(a, THP, MADV_FREE)
    dot = step_dot(before, folio, "madvise")
    after = dot.split('"after"')[1]
    assert "+lazyfree" not in after and "-swapbacked" in after  # PG_swapbacked cleared, nothing added
    assert "<b>inactive_file</b>" in after  # lru changed: bold
    assert "<b>1</b>" not in after  # refcount and mapcount did not change: not bold
    assert step_dot(None, None, "free_folio").count("no folio state recorded") == 1


# ---------------------------------------------------------------- rendering


def test_diagram_renders_svg_without_the_renderer_version():
    m, p, child, a = mixed_state()
    diagram = Diagram(page_tables_dot(p, a, 16 * MiB), "t")
    bundle = diagram._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg") and "Generated by" not in bundle["image/svg+xml"]
    assert bundle["text/plain"] == "<Diagram: t>"
    render.svg.cache_clear()
    assert diagram.svg() == bundle["image/svg+xml"]  # drawn again, not from the cache: the same


def test_labels_are_measured_in_courier_and_shown_in_any_monospace_font():
    m, p, child, a = mixed_state()
    drawn = render.svg(folio_dot(m.folios[0x100600]))
    families = set(re.findall(r'font-family="([^"]*)"', drawn))
    assert families == {render.MONOSPACE} and render.MONOSPACE.endswith(",monospace")


def test_the_drawing_needs_no_graphviz_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    render.svg.cache_clear()
    m, p, child, a = mixed_state()
    assert render.svg(folio_dot(m.folios[0x100600])).startswith("<svg")


def test_bad_dot_text_is_an_error_that_shows_it():
    with pytest.raises(ValueError, match="could not draw this DOT text.*\ndigraph { a -> }"):
        render.svg("digraph { a -> }")


@pytest.fixture
def no_renderer(monkeypatch):
    """As if graphviz-pure had not been installed: its program is found nowhere."""
    monkeypatch.setattr(render, "PROGRAM", "graphviz-pure-not-installed")
    render.svg.cache_clear()
    yield
    render.svg.cache_clear()


def test_without_the_renderer_a_diagram_shows_its_source_and_how_to_install(no_renderer):
    m, p, child, a = mixed_state()
    source = folio_dot(m.folios[0x100600])
    bundle = Diagram(source, "t")._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    hint, rest = bundle["text/plain"].split("\n", 1)
    assert hint == INSTALL_HINT and "pip install graphviz-pure" in hint and rest == source
    assert render.html(source).startswith(f"<p>{INSTALL_HINT}</p><pre>digraph")
    with pytest.raises(render.GraphvizMissing):
        render.svg(source)


def test_model_objects_display_their_diagrams_in_ipython():
    m, p, child, a = mixed_state()
    formatter = DisplayFormatter()
    mmlab.register_display(formatter)
    for obj, marker in [(m.folios[0x100600], "folio 0x100600"), (p, "PMD entries"), (m, "inactive_anon"),
                        (m.trace[-1], "after")]:
        data, _ = formatter.format(obj)
        assert data["text/plain"] == repr(obj)
        assert data["image/svg+xml"].startswith("<svg") and marker in data["image/svg+xml"]


def test_the_model_runs_without_importing_the_display_layer():
    code = ("import sys, mmlab; p = mmlab.Machine().spawn(); a = p.mmap(1 << 21); p.write(a, 1 << 21); "
            "print(sorted(m for m in sys.modules if m.startswith(('mmlab.viz', 'ipywidgets'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_model_objects_display_without_the_renderer_too(no_renderer):
    m, p, child, a = mixed_state()
    formatter = DisplayFormatter()
    mmlab.register_display(formatter)
    data, _ = formatter.format(m.folios[0x100600])
    assert data["text/plain"].startswith(INSTALL_HINT) and "image/svg+xml" not in data


def test_the_model_and_its_diagrams_need_no_ipywidgets():
    code = ("import sys; sys.modules['ipywidgets'] = None\n"  # importing it now fails
            "from mmlab import Machine, MiB, MADV_HUGEPAGE\n"
            "m = Machine(); p = m.spawn(); a = p.mmap(2 * MiB); p.madvise(a, 2 * MiB, MADV_HUGEPAGE); p.write(a)\n"
            "from mmlab import viz; assert 'image/svg+xml' in viz.mimebundle(p)\n"
            "viz.Explorer().do('write')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_folio_mappings_are_the_walks_findings_grouped_by_vma_table_and_page():
    """A THP moved to an address one page past a 2 MiB boundary (its 512 PTEs span two
    page tables), shared with a child that then write-protects part of it (three VMAs)."""
    m, p, a = thp_process(size=THP)
    p.write(a, THP, 1)
    target = p.mmap(3 * THP) + THP + PAGE_SIZE
    b = p.mremap(a, THP, THP, MREMAP_MAYMOVE | MREMAP_FIXED, target)
    child = p.fork()
    child.mprotect(b + 100 * PAGE_SIZE, 50 * PAGE_SIZE, PROT_READ)
    folio = next(f for f in m.folios.values() if f.order == 9)

    def runs(process):
        """Pages of the folio, grouped as a reader would: same VMA, same table, next page."""
        out = []
        for vma in process.mm.vmas:
            for info in process.pagemap(vma.vm_start, vma.vm_end - vma.vm_start):
                page = None if not info.present else info.pfn - folio.pfn
                if page is None or not 0 <= page < folio.nr_pages:
                    continue
                last = out[-1] if out else None
                if (last and last[0] is vma and last[3] + 1 == page and info.addr // THP == last[1] // THP
                        and info.addr == last[1] + (page - last[2]) * PAGE_SIZE):
                    out[-1] = (vma, last[1], last[2], page)
                else:
                    out.append((vma, info.addr, page, page))
        return [(process.pid, addr, first, last) for _, addr, first, last in out]

    expected = runs(p) + runs(child)
    found = [(mapping.mm, mapping.address, mapping.first_page, mapping.last_page) for mapping in folio_mappings(folio)]
    assert sorted(found) == sorted(expected)
    assert len(expected) == 2 + 4  # parent: two tables; child: three VMAs, the last across two tables
