"""The live lab on other kernels: Debian's kernel packages booted under QEMU.

    from mmlab.live.vm import VM
    with VM("6.1") as vm:               # fetch (once), build the initramfs (once), boot
        print(vm.env.release)           # what the guest's live lab found: an Environment
        record = vm.record("lazyfree-reclaim")

``record`` and ``measure`` return what ``mmlab.scenarios.record`` and
``mmlab.live.timing.measure`` return on the host, because that is what runs in the guest
(mmlab.live.vm.guest), so comparisons, fingerprints, tables and widgets take them as they
are. The modules: ``debian`` (the kernel package), ``initramfs`` (Python and mmlab for the
guest), ``qemu`` (booting, the serial channel), ``guest`` (PID 1 inside).
"""

from __future__ import annotations

from pathlib import Path

from . import debian, initramfs, qemu
from .debian import KernelUnavailable
from .qemu import VMUnavailable

__all__ = ["VM", "KernelUnavailable", "VMUnavailable", "initramfs_path"]


def initramfs_path(say=print) -> Path:
    """The guest's initramfs in the cache folder, built when mmlab or Python changed."""
    folder = debian.cache_dir() / "initramfs"
    path = folder / f"{initramfs.fingerprint()}.cpio"
    if not path.exists():
        say("  building the guest's initramfs (this Python and mmlab)")
        for old in folder.glob("*.cpio"):
            old.unlink()
        initramfs.build(path)
    return path


class VM:
    """A kernel booted under QEMU with the live lab inside: ``env`` (the guest's
    mmlab.live.Environment), ``boot_seconds``, ``accel``, ``record()`` and ``measure()``.
    Powered off by ``close()`` or at the end of a ``with``."""

    def __init__(self, kernel: str, accel: str = "auto", say=print):
        qemu.qemu_binary()  # before any download: say at once when QEMU is missing
        self.kernel = debian.kernel(kernel, say)
        initrd = initramfs_path(say)
        say(f"  booting {self.kernel.package or self.kernel.vmlinuz} under QEMU")
        self._guest = qemu.boot(self.kernel.image, initrd, accel, say)
        self.boot_seconds, self.accel = self._guest.boot_seconds, self._guest.accel
        try:
            self.env = self._guest.call("probe")
        except BaseException:
            self._guest.close()
            raise

    def __repr__(self):
        return f"<VM {self.env.release} ({self.accel}), booted in {self.boot_seconds:.1f} s>"

    def record(self, name: str, runs: int = 1) -> dict:
        """``scenarios.record(name, mmlab.live.Machine, runs)`` in the guest."""
        return self._guest.call("record", name, runs)

    def measure(self, size: int, repeats: int) -> list:
        """``timing.measure`` on a live Machine of the guest: a list of timing.Timing."""
        return self._guest.call("measure", size, repeats)

    def close(self) -> None:
        self._guest.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
