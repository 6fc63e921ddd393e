"""Booting a kernel under QEMU and driving the live lab inside it.

``Guest(image, initrd)`` starts ``qemu-system-x86_64`` with the kernel, the initramfs of
mmlab.live.vm.initramfs and two serial ports: the first is the kernel's console (kept in a
log, shown when the guest fails), the second carries mmlab.live.channel messages between
this process and mmlab.live.vm.guest, PID 1 in the VM. QEMU connects that port to a Unix
socket this process listens on, so nothing reaches the network.

The VM has 2 vCPUs and at most 2 GiB, no disk, no network and no swap. Its kernel command
line sets transparent hugepages to ``madvise``, as on the machine the host recordings come
from, so that only the lab's MADV_HUGEPAGE regions get THPs; the guest puts khugepaged to
sleep (mmlab.live.vm.guest). ``boot`` uses KVM only where a
guest really boots with it; otherwise QEMU emulates the CPU (TCG), which is slower but
runs the same kernel code.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .. import channel

QEMU = "qemu-system-x86_64"
MEMORY_MIB = 2048
CPUS = 2
BOOT_TIMEOUT = 60.0  # seconds until the guest says it is ready (a TCG boot takes about 10)
REPLY_TIMEOUT = 900.0  # seconds for one request (recording a scenario, timing reclaim)
# mitigations=off: no page-table isolation or retpolines, whose cost TCG multiplies; they
# change nothing the lab observes.
PR_SET_PDEATHSIG = 1
CMDLINE = "console=ttyS0 quiet panic=-1 transparent_hugepage=madvise mitigations=off"


class VMUnavailable(RuntimeError):
    """The VM could not be started or stopped answering; the message says why and what to do."""


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise VMUnavailable(
            f"{QEMU} is not installed: the live lab boots other kernels under QEMU. "
            "Install it with: apt-get install qemu-system-x86 (as root)"
        )
    return path


def kvm_available() -> bool:
    """Whether /dev/kvm is there for this user. Whether it really runs a kernel is only
    known by booting one: ``boot`` falls back to TCG when a KVM guest fails."""
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def boot(image: Path, initrd: Path, accel: str = "auto", say=print) -> Guest:
    """A running Guest. ``accel`` is "kvm", "tcg" or "auto": KVM when /dev/kvm is usable
    and a guest really boots with it, else TCG."""
    if accel not in ("auto", "kvm", "tcg"):
        raise ValueError(f"accel must be auto, kvm or tcg, not {accel!r}")
    if accel == "kvm" and not kvm_available():
        raise VMUnavailable("KVM was asked for, but /dev/kvm is missing or not usable by this user; "
                            "use --accel tcg (CPU emulation: slower, the same kernel code) or auto")  # fmt: skip
    if accel == "auto" and kvm_available():
        started = time.monotonic()
        try:
            return Guest(image, initrd, "kvm")
        except VMUnavailable as e:
            say(
                f"  KVM did not boot the guest ({str(e).splitlines()[0]}, after {time.monotonic() - started:.1f} s); "
                "emulating the CPU with TCG instead"
            )
    return Guest(image, initrd, "tcg" if accel == "auto" else accel)


def _die_with_parent() -> None:
    """In QEMU's process before it starts: be killed when the process that started it dies
    (PR_SET_PDEATHSIG), so a VM never outlives a killed notebook or command."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Guest:
    """One running VM with the live lab inside. Use as a context manager; ``close()``
    powers it off (or kills QEMU if the guest no longer answers)."""

    def __init__(self, image: Path, initrd: Path, accel: str = "tcg", memory_mib: int = MEMORY_MIB):
        if not 256 <= memory_mib <= MEMORY_MIB:
            raise ValueError(f"the VM gets between 256 and {MEMORY_MIB} MiB, not {memory_mib}")
        self.accel = accel
        self._dir = tempfile.TemporaryDirectory(prefix="mmlab-vm-")
        self.console = Path(self._dir.name) / "console.log"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = Path(self._dir.name) / "lab.sock"
        listener.bind(str(path))
        listener.listen(1)
        command = [
            qemu_binary(), "-accel", accel, "-cpu", "max", "-smp", str(CPUS), "-m", str(memory_mib),
            "-machine", "pc", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(image), "-initrd", str(initrd), "-append", CMDLINE,
            "-serial", f"file:{self.console}",
            "-chardev", f"socket,id=lab,path={path}", "-serial", "chardev:lab",
        ]  # fmt: skip
        started = time.monotonic()
        self._sock = None
        self._output = b""
        self._qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # fmt: skip
        os.set_blocking(self._qemu.stdout.fileno(), False)
        try:
            deadline = started + BOOT_TIMEOUT
            self._wait_for(listener, deadline, "QEMU did not connect the lab's serial port")
            self._sock, _ = listener.accept()
            self._wait_for(self._sock, deadline, "the guest did not start the live lab")
            self._sock.settimeout(REPLY_TIMEOUT)
            self._reply("boot")
            self.boot_seconds = time.monotonic() - started
        except BaseException:
            self._kill()
            raise
        finally:
            listener.close()

    def _wait_for(self, sock: socket.socket, deadline: float, what: str) -> None:
        """Wait until ``sock`` is readable, watching QEMU: its exit, or a KVM error (QEMU
        then stops the vCPU and waits), is a failure at once."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._failure(f"{what} within {BOOT_TIMEOUT:.0f} s")
            ready, _, _ = select.select([sock, self._qemu.stdout], [], [], left)
            if self._qemu.stdout in ready:
                self._output += self._qemu.stdout.read() or b""
                if b"KVM internal error" in self._output or self._qemu.poll() is not None:
                    raise self._failure(f"{what}: QEMU stopped")
            if sock in ready:
                return

    def _failure(self, what: str) -> VMUnavailable:
        """A VMUnavailable saying ``what`` went wrong, with QEMU's messages and the end of the
        guest's console."""
        if self._qemu.poll() is None:
            self._qemu.kill()
        os.set_blocking(self._qemu.stdout.fileno(), True)
        out = (self._output + self._qemu.communicate()[0]).decode(errors="replace").strip()
        console = self.console.read_text(errors="replace").strip().splitlines()[-60:] if self.console.exists() else []
        lines = [what]
        if out:
            lines.append(f"QEMU said: {out}")
        if console:
            lines.append("the guest's console ended with:\n    " + "\n    ".join(console))
        return VMUnavailable("\n".join(lines))

    def _reply(self, request: str):
        try:
            kind, result = channel.recv(self._sock)
        except (channel.ChannelClosed, ConnectionError, TimeoutError):
            raise self._failure(f"the guest stopped answering during {request}") from None
        if kind == "error":
            raise RuntimeError(f"the guest's live lab failed during {request}:\n{result}")
        return result

    def call(self, name: str, *args):
        """One request to the guest (mmlab.live.vm.guest): its result."""
        try:
            channel.send(self._sock, (name, args))
        except (ConnectionError, OSError):
            raise self._failure(f"the guest went away before {name}") from None
        return self._reply(name)

    def close(self) -> None:
        if self._qemu.poll() is None:
            try:
                self.call("poweroff")
                self._qemu.wait(timeout=30)
            except (VMUnavailable, subprocess.TimeoutExpired, OSError):
                pass
        self._kill()

    def _kill(self) -> None:
        if self._qemu.poll() is None:
            self._qemu.kill()
            self._qemu.wait()
        if self._sock is not None:
            self._sock.close()
        if self._qemu.stdout is not None:
            self._qemu.stdout.close()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
