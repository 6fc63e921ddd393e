"""The memory syscalls the live lab makes, through ctypes and the C library.

Each wrapper returns what the syscall returns and raises ``OSError`` with the syscall's
errno on failure, so callers see exactly what the kernel said. Only the lab's server
process (mmlab.live.server) calls these, and only on the lab's own mappings.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

_VOID_P, _SIZE, _INT, _UINT = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint

_libc.mmap.restype = _VOID_P
_libc.mmap.argtypes = [_VOID_P, _SIZE, _INT, _INT, _INT, ctypes.c_long]
_libc.munmap.argtypes = [_VOID_P, _SIZE]
_libc.madvise.argtypes = [_VOID_P, _SIZE, _INT]
_libc.mlock.argtypes = [_VOID_P, _SIZE]
_libc.munlock.argtypes = [_VOID_P, _SIZE]
_libc.mprotect.argtypes = [_VOID_P, _SIZE, _INT]
_libc.ioctl.argtypes = [_INT, ctypes.c_ulong, _VOID_P]
_libc.vmsplice.restype = ctypes.c_ssize_t
_libc.vmsplice.argtypes = [_INT, _VOID_P, _SIZE, _UINT]
_libc.syscall.restype = ctypes.c_long

MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_FAILED = ctypes.c_void_p(-1).value
SPLICE_F_NONBLOCK = 0x02
SYS_MLOCK2 = 325  # x86-64; called directly because older C libraries lack mlock2()


def _check(result: int) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def mmap(addr: int | None, length: int, prot: int, flags: int) -> int:
    result = _libc.mmap(addr, length, prot, flags, -1, 0)
    if result in (None, MAP_FAILED):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def munmap(addr: int, length: int) -> None:
    _check(_libc.munmap(addr, length))


def madvise(addr: int, length: int, advice: int) -> None:
    _check(_libc.madvise(addr, length, advice))


def mlock(addr: int, length: int) -> None:
    _check(_libc.mlock(addr, length))


def mlock2(addr: int, length: int, flags: int) -> None:
    _check(_libc.syscall(ctypes.c_long(SYS_MLOCK2), _VOID_P(addr), _SIZE(length), _UINT(flags)))


def munlock(addr: int, length: int) -> None:
    _check(_libc.munlock(addr, length))


def mprotect(addr: int, length: int, prot: int) -> None:
    _check(_libc.mprotect(addr, length, prot))


def ioctl(fd: int, request: int, arg: int) -> int:
    return _check(_libc.ioctl(fd, request, arg))


class _IoVec(ctypes.Structure):
    _fields_ = [("base", _VOID_P), ("len", _SIZE)]


def vmsplice_pages(pipe_write_fd: int, addr: int, length: int) -> int:
    """Splice the user pages of [addr, addr + length) into a pipe without copying.

    The kernel takes a reference on each page (get_user_pages) and holds it in the pipe
    buffer until the pipe is read or closed: an extra folio reference, which is what a
    GUP pin means to reclaim. Returns the number of bytes spliced.
    """
    iov = _IoVec(addr, length)
    return _check(_libc.vmsplice(pipe_write_fd, ctypes.byref(iov), 1, SPLICE_F_NONBLOCK))


def memset(addr: int, value: int, length: int) -> None:
    ctypes.memset(addr, value, length)


def read_byte(addr: int) -> int:
    return ctypes.string_at(addr, 1)[0]
