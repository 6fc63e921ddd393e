"""Both backends implement the facade declared in mmlab.backend, member for member, with the
same parameters (names, order, defaults), so a scenario written against it runs on either."""

from __future__ import annotations

import inspect
import re

import pytest

from mmlab import backend, machine
from mmlab.grading.exercises.ex07 import ExperimentMachine
from mmlab.live import machine as live_machine
from mmlab.live import process as live_process

IMPLEMENTATIONS = {
    backend.Machine: [machine.Machine, live_machine.Machine, ExperimentMachine],
    backend.Process: [machine.Process, live_process.Process],
    backend.Pin: [machine.Pin, live_process.Pin],
}


def members(protocol) -> list[str]:
    """The methods and properties a Protocol declares, and its annotated attributes."""
    declared = [name for name, value in vars(protocol).items()
                if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))]
    return declared + list(getattr(protocol, "__annotations__", {}))


def parameters(func) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]


CASES = [(protocol, cls, name) for protocol, classes in IMPLEMENTATIONS.items() for cls in classes
         for name in members(protocol)]


@pytest.mark.parametrize(("protocol", "cls", "name"), CASES,
                         ids=[f"{cls.__module__}.{cls.__name__}.{name}" for _, cls, name in CASES])
def test_backend_implements_the_member(protocol, cls, name):
    declared = vars(protocol).get(name)
    implemented = inspect.getattr_static(cls, name, None)
    if declared is None or isinstance(declared, property):  # data: a property, or set by __init__
        assert isinstance(implemented, property) or re.search(
            rf"self\.{name}\b\s*(:[^=\n]*)?=", inspect.getsource(cls.__init__)), f"{cls.__qualname__} has no {name}"
        return
    assert callable(implemented), f"{cls.__qualname__} has no method {name}"
    func = inspect.unwrap(implemented)
    assert parameters(func) == parameters(declared), (
        f"{cls.__qualname__}.{name}{inspect.signature(func)} differs from the facade's {inspect.signature(declared)}")


def test_a_model_machine_and_process_satisfy_the_protocols():
    m = machine.Machine()
    p = m.spawn()
    assert isinstance(m, backend.Machine)
    assert isinstance(p, backend.Process)
    assert isinstance(p.pin(p.mmap(4096)), backend.Pin)


def test_exercise_7s_experiment_machine_is_a_backend_machine():
    m = ExperimentMachine("6.18", "always", True)
    p = m.spawn()
    assert isinstance(m, backend.Machine)
    assert m.processes == [p]


def test_a_class_missing_a_call_is_caught():
    class Partial:
        def release(self) -> None: ...

    assert isinstance(Partial(), backend.Pin)
    assert not isinstance(Partial(), backend.Process)
