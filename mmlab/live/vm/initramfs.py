"""The guest's initramfs: this machine's Python, the standard library it needs, and mmlab.

The guest runs the very code the host live lab runs (mmlab.live.server and the scenarios),
so the initramfs carries the interpreter that runs the host lab: its binary and the shared
libraries ``ldd`` lists for it and its extension modules, its standard library (less what
a lab never imports: tests, GUI toolkits, installed packages), and mmlab's own sources,
compiled. ``/init`` is a short script that starts ``mmlab.live.vm.guest``.

Paths inside the guest are the host's, so the interpreter finds its standard library the
way it does here. The archive is an uncompressed ``newc`` cpio, which every kernel
unpacks without a decompressor and which is quick to unpack under emulation. It is built
once per interpreter and mmlab version and kept in the cache folder.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import mmlab

GUEST_PACKAGE_PARENT = "/lab"  # where mmlab sits in the guest
# Standard-library folders a lab never imports (tests, GUI, packaging, installed packages).
STDLIB_SKIP = {
    "site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
    "pydoc_data", "distutils",
}  # fmt: skip
# Extension modules a lab never imports, most of them for libraries the guest would need too.
EXTENSION_SKIP = re.compile(
    r"^(_(test|tkinter|curses|sqlite|ssl|hashlib|xxsub|xxtest|ctypes_test|dbm|gdbm|crypt|uuid|bz2|codecs_"
    r"|multibytecodec|elementtree|lsprof|asyncio|multiprocessing|posixshmem|zoneinfo)"
    r"|xxlimited|readline|nis|spwd|ossaudiodev|audioop|pyexpat|syslog)"
)


class InitramfsError(RuntimeError):
    """The guest's initramfs could not be built from this machine's Python."""


class Cpio:
    """Writes a ``newc`` cpio archive: directories, files, symlinks and device nodes."""

    def __init__(self, out):
        self.out = out
        self.ino = 1
        self.seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), mtime: int = 0) -> None:
        name = name.lstrip("/")
        if name in self.seen:
            return
        self.seen.add(name)
        fields = (self.ino, mode, 0, 0, 1, mtime, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + name.encode() + b"\0")
        self.out.write(b"\0" * (-(len(header) + len(name) + 1) % 4))
        self.out.write(data + b"\0" * (-len(data) % 4))

    def directory(self, path: str) -> None:
        parts = Path(path).parts[1:] if path.startswith("/") else Path(path).parts
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def file(self, path: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        """A regular file. Give Python sources their real ``mtime``: a compiled module is
        used only when the source's mtime matches the one recorded in it."""
        self.directory(str(Path(path).parent))
        self._entry(path, stat.S_IFREG | mode, data, mtime=mtime)

    def symlink(self, path: str, target: str) -> None:
        self.directory(str(Path(path).parent))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def device(self, path: str, major: int, minor: int) -> None:
        self.directory(str(Path(path).parent))
        self._entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def host_path(self, path: str) -> None:
        """Add a host file under the same path, with every symlink on the way to it."""
        path = os.path.abspath(path)
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            prefix = os.path.join(*parts[:i])
            if os.path.islink(prefix):
                target = os.readlink(prefix)
                self.symlink(prefix, target)
                rest = parts[i:]
                return self.host_path(os.path.join(os.path.dirname(prefix), target, *rest))
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            self.directory(path)
        else:
            self.file(path, Path(path).read_bytes(), st.st_mode & 0o777, int(st.st_mtime))

    def trailer(self) -> None:
        self._entry("TRAILER!!!", 0)


def interpreter() -> str:
    """The real binary of the Python running mmlab (a venv's python is a link to it)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def shared_libraries(binaries: list[str]) -> set[str]:
    """Every shared library (and the dynamic loader) ``ldd`` lists for ``binaries``."""
    if not shutil.which("ldd"):
        raise InitramfsError("ldd is missing (Debian package libc-bin): it lists the libraries Python needs")
    libraries = set()
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "not found" in line:
                raise InitramfsError(f"{binary} needs a library ldd cannot find: {line.strip()}")
            path = re.search(r"(/\S+) \(0x", line)
            if path:
                libraries.add(path.group(1))
    return libraries


def _stdlib_files(stdlib: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(stdlib):
        dirs[:] = [d for d in dirs if d not in STDLIB_SKIP and not d.startswith("config-")]
        files.extend(Path(root, n) for n in names if n.endswith((".py", ".so")) or n.endswith(_PYC))
    return [f for f in files if not (f.suffix == ".so" and EXTENSION_SKIP.search(f.name))]


_PYC = f".{sys.implementation.cache_tag}.pyc"  # compiled without -O: the only ones the guest loads


INIT = """#!{python} -S
import sys
sys.path[:0] = ["{parent}"]
from mmlab.live.vm.guest import main
main()
"""


def _package_files(staging: Path) -> list[Path]:
    """mmlab's Python sources copied to ``staging`` and compiled there."""
    source = Path(mmlab.__file__).parent
    target = staging / "mmlab"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(target, quiet=1)
    return sorted(p for p in target.rglob("*") if p.is_file() and p.suffix in (".py", ".pyc"))


def fingerprint() -> str:
    """What the initramfs depends on: the interpreter and mmlab's sources."""
    h = hashlib.sha256(interpreter().encode() + sys.version.encode())
    for path in sorted(Path(mmlab.__file__).parent.rglob("*.py")):
        h.update(str(path.relative_to(Path(mmlab.__file__).parent)).encode() + path.read_bytes())
    return h.hexdigest()[:16]


def build(path: Path) -> Path:
    """Write the initramfs to ``path`` (through a temporary file, so a half-written one is
    never used) and return ``path``."""
    python = interpreter()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = Path(sysconfig.get_paths()["platstdlib"]) / "lib-dynload"
    files = _stdlib_files(stdlib)
    extensions = [str(f) for f in files if f.suffix == ".so"]
    if not (stdlib / "os.py").exists():
        raise InitramfsError(f"the standard library of {python} is not where sysconfig says ({stdlib})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging, tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
        try:
            archive = Cpio(out)
            for name in ("proc", "sys", "dev", "tmp", "run"):
                archive.directory(name)
            archive.device("/dev/console", 5, 1)
            archive.device("/dev/null", 1, 3)
            for p in [python, *sorted(shared_libraries([python, *extensions])), *map(str, files)]:
                archive.host_path(p)
            archive.directory(str(dynload))
            for f in _package_files(Path(staging)):
                archive.file(f"{GUEST_PACKAGE_PARENT}/{f.relative_to(staging)}", f.read_bytes(), 0o644,
                             int(f.stat().st_mtime))  # fmt: skip
            archive.file("/init", INIT.format(python=python, parent=GUEST_PACKAGE_PARENT).encode(), 0o755)
            archive.trailer()
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, path)
    return path
