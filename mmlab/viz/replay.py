"""Step through a trace: each event of ``Machine.trace`` as one sentence (which kernel
function, what it decided and why) and a diagram of the folio before and after it.

``Replay`` is plain Python, so every step can be checked without a browser;
``replay_widget`` puts a slider and buttons on it. Reclaim in 6.10 repeats one decision
for each of 512 PTEs; each sentence says how many steps repeat it, and the widget's
"next decision" button jumps past them.
"""

from __future__ import annotations

import re

from .folio import step_dot
from .render import Diagram

# What each traced function is doing, in a few words (for the step sentence).
FUNCTION_ROLES = {
    "do_mmap": "the mmap() system call",
    "do_madvise": "the madvise() system call",
    "do_anonymous_page": "a page fault on anonymous memory",
    "do_huge_pmd_anonymous_page": "a page fault that may map a THP",
    "do_huge_pmd_wp_page": "a write fault on a read-only huge PMD",
    "do_wp_page": "a write fault on a read-only PTE",
    "wp_page_copy": "copy-on-write",
    "copy_present_page": "fork copying a page",
    "zap_huge_pmd": "unmapping a huge PMD",
    "zap_pte_range": "unmapping PTEs",
    "pin_user_pages": "pinning pages for I/O (GUP)",
    "madvise_free_huge_pmd": "MADV_FREE on a huge PMD",
    "folio_mark_lazyfree": "MADV_FREE marking the folio lazyfree",
    "mlock_folio": "mlocking a folio",
    "mlock_new_folio": "mlocking a new folio",
    "munlock_folio": "munlocking a folio",
    "shrink_folio_list": "reclaim deciding the folio's fate",
    "folio_referenced_one": "reclaim reading the accessed bits in one VMA",
    "try_to_unmap": "reclaim unmapping the folio from every page table",
    "rmap_walk_anon": "the reverse-map walk finding a VMA that may map the folio",
    "try_to_unmap_one": "unmapping the folio from one VMA",
    "__split_huge_pmd_locked": "splitting a huge PMD into 512 PTEs",
    "__discard_anon_folio_pmd_locked": "discarding a lazyfree THP at PMD level",
    "deferred_split_folio": "queueing a partly mapped THP for a later split",
    "split_folio": "splitting a large folio into small ones",
    "free_folio": "freeing the folio",
}


def decision(event) -> tuple[str, str]:
    """What makes two events the same decision: the function, and the message with its
    numbers blanked out ("discard 1 PTE(s)" at refcount 513 and at 512 are one decision)."""
    return event.function, re.sub(r"0x[0-9a-f]+|\d+", "#", event.message)


class Replay:
    """A trace, one event at a time. ``events`` is ``Machine.trace`` or a slice of it;
    ``functions`` keeps only the events of those kernel functions."""

    def __init__(self, events, functions=None):
        self.events = [e for e in events if functions is None or e.function in functions]

    def __len__(self):
        return len(self.events)

    def _event(self, i: int):
        if not self.events:
            raise IndexError("the trace is empty: run a call on a Machine created with trace=True first")
        if not 0 <= i < len(self.events):
            raise IndexError(f"step {i} is outside the trace: steps run from 0 to {len(self.events) - 1}")
        return self.events[i]

    def repeats(self, i: int) -> int:
        """How many steps right after step ``i`` make the same decision."""
        key, n = decision(self._event(i)), 0
        while i + n + 1 < len(self.events) and decision(self.events[i + n + 1]) == key:
            n += 1
        return n

    def next_decision(self, i: int) -> int:
        """The first later step that decides something else (or the last step)."""
        return min(i + self.repeats(i) + 1, len(self.events) - 1)

    def sentence(self, i: int) -> str:
        """Step ``i`` in one sentence: where the kernel is and what it decided."""
        event = self._event(i)
        role = FUNCTION_ROLES.get(event.function)
        where = f"{event.function} ({role})" if role else event.function
        text = f"Step {i + 1} of {len(self.events)}, in {where}: {event.message.rstrip('.')}."
        repeats = self.repeats(i)
        if repeats:
            text += f" The next {repeats} step(s) make the same decision."
        return text

    def before(self, i: int) -> dict | None:
        """The snapshot of step ``i``'s folio at the last earlier step that recorded it."""
        event = self._event(i)
        if event.folio is None:
            return None
        for earlier in reversed(self.events[:i]):
            if earlier.folio is not None and earlier.folio["pfn"] == event.folio["pfn"]:
                return earlier.folio
        return None

    def dot(self, i: int) -> str:
        """The folio as the previous step left it and as step ``i`` left it."""
        return step_dot(self.before(i), self._event(i).folio, self._event(i).function)

    def step(self, i: int) -> tuple[str, str]:
        """(sentence, DOT) of step ``i``: everything the step-through shows."""
        return self.sentence(i), self.dot(i)

    def diagram(self, i: int) -> Diagram:
        return Diagram(self.dot(i), f"step {i + 1} of the trace")

    def decisions(self) -> list[tuple[int, int]]:
        """(first step, number of steps) of each run of one decision, in order."""
        out, i = [], 0
        while i < len(self.events):
            n = self.repeats(i) + 1
            out.append((i, n))
            i += n
        return out


def trace_step(events, i: int) -> tuple[str, str]:
    """(sentence, DOT) of step ``i`` of a trace: ``Replay(events).step(i)``."""
    return Replay(events).step(i)


class ReplayWidget:
    """A slider and buttons over a Replay, showing the step's sentence and diagram."""

    def __init__(self, replay: Replay):
        import ipywidgets as widgets

        from .render import html

        if not len(replay):
            raise ValueError("the trace is empty: run a call on a Machine created with trace=True first")
        self.replay = replay
        self._html = html
        self.slider = widgets.IntSlider(value=1, min=1, max=len(replay), description="step",
                                        continuous_update=False)
        self.back = widgets.Button(description="previous", icon="arrow-left")
        self.forward = widgets.Button(description="next", icon="arrow-right")
        self.skip = widgets.Button(description="next decision", icon="forward",
                                   tooltip="jump past the steps that repeat this decision")
        self.sentence = widgets.HTML()
        self.diagram = widgets.HTML()
        self.back.on_click(lambda _: self.show(self.index - 1))
        self.forward.on_click(lambda _: self.show(self.index + 1))
        self.skip.on_click(lambda _: self.show(self.replay.next_decision(self.index)))
        self.slider.observe(lambda _: self._draw(), "value")
        self.box = widgets.VBox([widgets.HBox([self.slider, self.back, self.forward, self.skip]), self.sentence,
                                 self.diagram])
        self._draw()

    @property
    def index(self) -> int:
        """The step shown, counted from 0 like Replay's steps (the slider counts from 1)."""
        return self.slider.value - 1

    def show(self, i: int) -> None:
        self.slider.value = max(0, min(i, len(self.replay) - 1)) + 1

    def _draw(self) -> None:
        from .dot import esc

        sentence, dot = self.replay.step(self.index)
        self.sentence.value = f"<p>{esc(sentence)}</p>"
        self.diagram.value = self._html(dot)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.box._repr_mimebundle_(include=include, exclude=exclude)


def replay_widget(source, functions=None) -> ReplayWidget:
    """A step-through of a Machine's trace (or a list of events)."""
    events = source.trace if hasattr(source, "trace") else source
    return ReplayWidget(Replay(list(events), functions))
