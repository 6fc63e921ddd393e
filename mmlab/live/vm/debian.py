"""Debian kernels for the VM: find the package, download it with apt, keep its kernel image.

``kernel("6.1")`` resolves a kernel named on the command line to a boot image:

* ``6.1``, ``6.12``, ``6.12.117``: the newest ``linux-image-<that>...-amd64`` package apt
  knows (the generic flavour: not cloud, rt or dbg);
* a package name (``linux-image-6.12.118+deb12-amd64``) or a ``.deb`` file;
* a ``vmlinuz`` path: booted as it is.

A package is fetched with ``apt-get download`` (the user's apt sources; nothing is
installed) into the cache folder, and only its kernel image, config and changelog are
kept there: ``$XDG_CACHE_HOME/mmlab`` or ``~/.cache/mmlab``, under ``kernels/<package>/``.
An image compressed with xz (Debian's 6.1) is also kept decompressed, as ``vmlinux``:
under TCG its decompressor alone takes longer than the rest of the boot, and QEMU boots an
uncompressed kernel directly through its PVH entry point.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAVOUR = "amd64"
TESTED = ("6.1", "6.12")  # the kernels the VM tests boot and tests/data/vm-*/ records


class KernelUnavailable(RuntimeError):
    """The kernel asked for cannot be found or fetched; the message says what to do."""


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel image and what is known about it before booting."""

    vmlinuz: Path
    package: str | None = None  # the Debian package it came from
    config: Path | None = None  # the kernel's .config (boot/config-*), when known
    changelog: Path | None = None  # the package's changelog.gz: upstream stable commits by title
    vmlinux: Path | None = None  # the same kernel uncompressed, when it could be (see the module)

    @property
    def image(self) -> Path:
        """What QEMU boots: the uncompressed kernel when there is one."""
        return self.vmlinux or self.vmlinuz


XZ_MAGIC = b"\xfd7zXZ\x00"


def decompress(vmlinuz: Path, config: Path, into: Path) -> Path | None:
    """Write the ELF kernel inside an xz-compressed ``vmlinuz`` to ``into``; None when the
    image is compressed otherwise or the kernel has no PVH entry point (CONFIG_PVH)."""
    if not config.exists() or "\nCONFIG_PVH=y\n" not in config.read_text():
        return None
    data = vmlinuz.read_bytes()
    start = data.find(XZ_MAGIC)
    if start < 0:
        return None
    try:
        elf = lzma.LZMADecompressor().decompress(data[start:])
    except lzma.LZMAError:
        return None
    if not elf.startswith(b"\x7fELF"):
        return None
    into.write_bytes(elf)
    return into


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmlab"


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def package_for(version: str) -> str:
    """The newest generic-flavour image package of ``version`` (6.1, 6.12, 6.12.117) in
    apt's lists."""
    if not shutil.which("apt-cache"):
        raise KernelUnavailable(
            f"apt-cache is missing: kernel {version} comes from Debian's archive through apt. "
            "Give a .deb file or a vmlinuz path instead"
        )
    names = subprocess.run(["apt-cache", "pkgnames", "linux-image-"], capture_output=True, text=True).stdout
    pattern = re.compile(rf"linux-image-{re.escape(version)}[.+-][0-9a-z.+-]*-{FLAVOUR}")
    found = [n for n in names.split() if pattern.fullmatch(n) and not re.search(r"-(cloud|rt|dbg)-", n)]
    if not found:
        raise KernelUnavailable(
            f"apt knows no package linux-image-{version}*-{FLAVOUR}. Kernel packages come from Debian's "
            "archive (bookworm has 6.1 and 6.12): refresh apt's lists with 'apt-get update' (as root), "
            "or give a package name, a .deb file or a vmlinuz path"
        )
    return max(found, key=_natural)


def download(package: str, into: Path, say=print) -> Path:
    """``apt-get download`` one package into ``into``. apt's messages and progress go to
    standard error (stdout may carry ``mmlab live --json``)."""
    command = ["apt-get", "download", package]
    if os.geteuid() == 0:
        command[1:1] = ["-o", "APT::Sandbox::User=root"]  # apt's _apt user may not write the user's cache
    say(f"  downloading {package} with apt-get (once; kept in {cache_dir()})")
    try:
        output = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a notebook's stderr is no file
        output = None
    done = subprocess.run(command, cwd=into, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    debs = list(into.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not debs:
        raise KernelUnavailable(f"apt-get download {package} failed (status {done.returncode}); see apt's messages")
    return debs[0]


def unpack(deb: Path, into: Path) -> Kernel:
    """Keep the kernel image, its config and the changelog from a kernel package (the
    modules are not needed: the lab's guest uses only built-in drivers)."""
    if not shutil.which("dpkg-deb"):
        raise KernelUnavailable("dpkg-deb is missing (Debian package dpkg): it unpacks kernel packages")
    wanted = {"vmlinuz": re.compile(r"\./boot/vmlinuz-.*"), "config": re.compile(r"\./boot/config-.*"),
              "changelog.gz": re.compile(r"\./usr/share/doc/linux-image-[^/]*/changelog\.gz")}  # fmt: skip
    into.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as dpkg:
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar:
            for member in tar:
                for keep, pattern in wanted.items():
                    if member.isfile() and pattern.fullmatch(member.name):
                        (into / keep).write_bytes(tar.extractfile(member).read())
    if not (into / "vmlinuz").exists():
        raise KernelUnavailable(f"{deb} holds no boot/vmlinuz-*: is it a linux-image package?")
    return _kernel(into, deb.name.split("_")[0])


def _kernel(folder: Path, package: str) -> Kernel:
    vmlinux = folder / "vmlinux"
    if not vmlinux.exists():
        vmlinux = decompress(folder / "vmlinuz", folder / "config", vmlinux)
    return Kernel(folder / "vmlinuz", package, folder / "config", folder / "changelog.gz", vmlinux)


def kernel(spec: str, say=print) -> Kernel:
    """The kernel ``spec`` names (see the module's docstring), fetched and unpacked into
    the cache folder the first time."""
    path = Path(spec).expanduser()
    if path.suffix == ".deb" or path.is_file():
        if not path.is_file():
            raise KernelUnavailable(f"{path}: no such file")
        if path.suffix != ".deb":
            return Kernel(path)
        folder = cache_dir() / "kernels" / path.name.split("_")[0]
        return _kernel(folder, folder.name) if (folder / "vmlinuz").exists() else unpack(path, folder)
    if "/" in spec:
        raise KernelUnavailable(f"{spec}: no such file (give a vmlinuz or .deb path, a package or a version)")
    package = spec if spec.startswith("linux-image-") else package_for(spec)
    folder = cache_dir() / "kernels" / package
    if (folder / "vmlinuz").exists():
        return _kernel(folder, package)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".download-") as tmp:
        deb = download(package, Path(tmp), say)
        say(f"  unpacking the kernel image from {deb.name}")
        unpacked = unpack(deb, Path(tmp) / "kernel")
        os.replace(unpacked.vmlinuz.parent, folder)
    return _kernel(folder, package)
