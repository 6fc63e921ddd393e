"""The package's layering: every import points down.

Read from the source with ``ast`` (imports inside functions included), each module of mmlab
belongs to a layer, and may import only its own layer or the ones below:

    uapi state kernels  <  proc backend  <  include/  <  mm/  <  machine debug
    <  scenarios/  <  viz/ and the package face (mmlab/__init__)  <  live/  <  grading/  <  app/

Inside include/ and mm/ the modules are ordered too (the kernel's headers, then its mm/*.c
in the order they call each other), and a module imports only those before it; nothing in
include/ or mm/ imports inside a function. Together these rule out import cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mmlab"

INCLUDE = ["page_flags", "pgtable", "highmem", "mm", "mm_types", "mm_inline", "huge_mm", "internal", "rmap"]
MM = ["page_vma_mapped", "page_alloc", "swap", "huge_memory", "rmap", "memory", "khugepaged", "gup", "mmap",
      "mprotect", "mremap", "vmscan", "mlock", "madvise", "task_mmu"]
LAYERS = [
    {"mmlab.uapi", "mmlab.state", "mmlab.kernels"},
    {"mmlab.proc", "mmlab.backend"},
    {"mmlab.include"} | {f"mmlab.include.{m}" for m in INCLUDE},
    {"mmlab.mm"} | {f"mmlab.mm.{m}" for m in MM},
    {"mmlab.machine", "mmlab.debug"},
    {"mmlab.scenarios"},
    {"mmlab.viz", "mmlab"},
    {"mmlab.live"},
    {"mmlab.grading"},
    {"mmlab.app", "mmlab.__main__"},
]
ORDERED = {f"mmlab.include.{m}": i for i, m in enumerate(INCLUDE)} | {f"mmlab.mm.{m}": i for i, m in enumerate(MM)}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of a module: that of its own name or of the nearest package named in LAYERS."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        for i, names in enumerate(LAYERS):
            if ".".join(parts[:n]) in names:
                return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def imports(module: str):
    """(imported mmlab module, line, inside a function) for each import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target in MODULES and target != module:
                yield target, node.lineno, id(node) in in_function


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


def test_every_model_module_has_its_place_in_the_order():
    unplaced = sorted(m for m in MODULES if m.startswith(("mmlab.include.", "mmlab.mm.")) and m not in ORDERED)
    assert not unplaced, f"add {unplaced} to INCLUDE or MM in {Path(__file__).name}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    for target, line, _ in imports(module):
        assert layer(target) <= layer(module), f"{module}:{line} imports {target}, a layer above it"
        if module in ORDERED and target in ORDERED and target.split(".")[1] == module.split(".")[1]:
            assert ORDERED[target] < ORDERED[module], f"{module}:{line} imports {target}, which comes after it"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(("mmlab.include", "mmlab.mm"))))
def test_no_import_inside_a_function_in_the_model(module):
    local = [f"line {line}: {target}" for target, line, inside in imports(module) if inside]
    assert not local, f"{module} imports inside a function: {', '.join(local)}"


def test_no_import_cycle():
    graph = {m: {t for t, _, _ in imports(m)} for m in MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        for target in graph[module]:
            visit(target, path + [module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_model_never_names_the_display_layer():
    model = [m for m in MODULES if layer(m) <= layer("mmlab.machine")]
    for module in model:
        for target, line, _ in imports(module):
            assert not target.startswith("mmlab.viz"), f"{module}:{line} imports {target}"


def flag_writes(module: str):
    """Lines of ``module`` that assign to a folio's ``flags`` (not a walk's or a VMA's)."""
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AugAssign) else []
        for target in targets:
            if (isinstance(target, ast.Attribute) and target.attr == "flags"
                    and not (isinstance(target.value, ast.Name) and target.value.id in ("pvmw", "self"))):
                yield node.lineno


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) <= layer("mmlab.machine")))
def test_page_flags_change_only_through_their_accessors(module):
    if module == "mmlab.include.page_flags":
        assert list(flag_writes(module)), "the accessors write folio.flags: the check would find them"
        return
    lines = list(flag_writes(module))
    assert not lines, f"{module} writes folio.flags at lines {lines}: use a page_flags accessor"
