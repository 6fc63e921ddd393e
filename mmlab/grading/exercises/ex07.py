"""Exercise 7.2's tools: a model machine that offers an experiment only what a live one does,
and a way to run the experiment on this machine's own kernel."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmlab import Machine

from ..plain import record_type


@record_type
@dataclass
class ExperimentMachine:
    """A model machine that offers an experiment only what a live one offers: the facade of
    mmlab.backend (``spawn()``, ``vmstat``, ``processes``; no kernel profile, no trace, no
    folios to look at).

    It crosses into a graded notebook as its three settings; the model machine behind it is
    made on first use, on whichever side of the sandbox uses it.
    """

    kernel: str
    thp: str
    use_zero_page: bool
    _machine: Machine | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def machine(self) -> Machine:
        if self._machine is None:
            self._machine = Machine(kernel=self.kernel, thp=self.thp, use_zero_page=self.use_zero_page, trace=False)
        return self._machine

    def spawn(self):
        return self.machine.spawn()

    @property
    def vmstat(self) -> dict[str, int]:
        return dict(self.machine.vmstat)

    @property
    def processes(self) -> list:
        return self.machine.processes

    def __repr__(self):
        zero = "on" if self.use_zero_page else "off"
        return f"<model Machine {self.kernel}, THP {self.thp}, huge zero page {zero}>"


def on_this_kernel(experiment) -> None:
    """Run ``experiment`` on this machine's own kernel (``mmlab.live.Machine``) and print its
    verdict; or print one line saying why it cannot run here."""
    from mmlab.live import LiveProcessDied, LiveUnavailable, probe
    from mmlab.live import Machine as LiveMachine

    try:
        env = probe()
        why = next(filter(None, map(env.lacking, ("linux", "thp", "pageout"))), None)
        if why:
            print("not run on this machine:", why)
            return
        with LiveMachine() as m:
            verdict = experiment(m)
    except (LiveUnavailable, LiveProcessDied, OSError) as error:
        print("the live run stopped:", error)
        return
    says = "discards lazyfree THPs at PMD level" if verdict else "does not discard lazyfree THPs at PMD level"
    print(f"your experiment says this kernel ({env.release}) {says}")
