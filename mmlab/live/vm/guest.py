"""Inside the VM: PID 1, serving the host's requests on the second serial port.

The guest runs the host live lab unchanged: ``record`` is ``scenarios.record`` with
``mmlab.live.Machine`` (its lab servers are real processes of the guest kernel),
``probe`` is ``mmlab.live.env.probe`` and ``measure`` is ``mmlab.live.timing.measure``.
Requests and replies are mmlab.live.channel messages; a reply is ``("ok", result)`` or
``("error", traceback text)``. After ``poweroff`` the VM powers off and QEMU exits.

Nothing here runs on the host: it expects to be PID 1 of a throwaway VM (it mounts /proc,
/sys and /dev, puts khugepaged to sleep, and powers the machine off).
"""

from __future__ import annotations

import ctypes
import os
import termios
import traceback
import tty

PORT = "/dev/ttyS1"  # the first serial port, ttyS0, is the kernel's console
RB_POWER_OFF = 0x4321FEDC
# Under emulation a scenario takes long enough for khugepaged (which scans MADV_HUGEPAGE
# ranges every 10 s) to collapse the lab's PTE-mapped THPs between two steps; in the guest
# it sleeps a day between scans instead. (This is the guest's sysfs, not the host's.)
KHUGEPAGED_SLEEP = ("/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs", "86400000")
_libc = ctypes.CDLL(None, use_errno=True)


class Port:
    """A serial port in raw mode, with the two socket methods mmlab.live.channel uses."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)  # no wait for carrier
        os.set_blocking(self.fd, True)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[2] |= termios.CLOCAL  # ignore modem control lines
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def recv(self, size: int) -> bytes:
        return os.read(self.fd, size)


def _mount(fstype: str, target: str) -> None:
    if _libc.mount(fstype.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def _serve(port: Port) -> None:
    from mmlab import scenarios
    from mmlab.live import channel, env, timing
    from mmlab.live.machine import Machine

    def measure(size: int, repeats: int):
        with Machine() as machine:
            return timing.measure(machine, size, repeats)

    requests = {
        "probe": env.probe,
        "record": lambda name, runs: scenarios.record(name, Machine, runs=runs),
        "measure": measure,
    }
    channel.send(port, ("ok", "ready"))
    while True:
        name, args = channel.recv(port)
        if name == "poweroff":
            channel.send(port, ("ok", None))
            termios.tcdrain(port.fd)
            return
        try:
            reply = ("ok", requests[name](*args))
        except Exception:
            reply = ("error", traceback.format_exc())
        channel.send(port, reply)


def main() -> None:
    try:
        for fstype, target in (("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev"), ("tmpfs", "/tmp")):
            _mount(fstype, target)
        os.environ.update(HOME="/tmp", TMPDIR="/tmp", PATH="/usr/bin:/bin")
        path, value = KHUGEPAGED_SLEEP
        with open(path, "w") as f:
            f.write(value)
        _serve(Port(PORT))
    except BaseException:
        traceback.print_exc()  # to the console (ttyS0), which the host shows when the guest fails
    finally:
        os.sync()
        _libc.reboot(RB_POWER_OFF)
