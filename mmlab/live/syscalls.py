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
_libc.mremap.restype = _VOID_P
_libc.mremap.argtypes = [_VOID_P, _SIZE, _SIZE, _INT, _VOID_P]
_libc.mlockall.argtypes = [_INT]
_libc.ioctl.argtypes = [_INT, ctypes.c_ulong, _VOID_P]
_libc.syscall.restype = ctypes.c_long

MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_FAILED = ctypes.c_void_p(-1).value
SYS_MLOCK2 = 325  # x86-64; called directly because older C libraries lack mlock2()
SYS_IO_URING_SETUP = 425  # x86-64, as are the two below
SYS_IO_URING_REGISTER = 427
IORING_REGISTER_BUFFERS = 0
IORING_UNREGISTER_BUFFERS = 1
_IO_URING_PARAMS_SIZE = 120  # sizeof(struct io_uring_params)


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


def mremap(old: int, old_length: int, new_length: int, flags: int, new: int) -> int:
    result = _libc.mremap(old, old_length, new_length, flags, new)
    if result in (None, MAP_FAILED):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def mlockall(flags: int) -> None:
    _check(_libc.mlockall(flags))


def munlockall() -> None:
    _check(_libc.munlockall())


def ioctl(fd: int, request: int, arg: int) -> int:
    return _check(_libc.ioctl(fd, request, arg))


class _IoVec(ctypes.Structure):
    _fields_ = [("base", _VOID_P), ("len", _SIZE)]


def pin_user_pages(addr: int, length: int) -> int:
    """Pin the pages of [addr, addr + length) the way a driver pins them for DMA: register
    them as an io_uring fixed buffer, which calls pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)
    (io_pin_pages() in io_uring/memmap.c). A write fault breaks copy-on-write first, and
    each page gets a pin (GUP_PIN_COUNTING_BIAS references for a small folio, one reference
    and one _pincount for a large one). Returns the ring's fd; ``unpin_user_pages(fd)``
    drops the pins."""
    params = ctypes.create_string_buffer(_IO_URING_PARAMS_SIZE)
    fd = _check(_libc.syscall(ctypes.c_long(SYS_IO_URING_SETUP), _UINT(1), params))
    iov = _IoVec(addr, length)
    try:
        _check(_libc.syscall(ctypes.c_long(SYS_IO_URING_REGISTER), _INT(fd), _UINT(IORING_REGISTER_BUFFERS),
                             ctypes.byref(iov), _UINT(1)))
    except OSError:
        os.close(fd)
        raise
    return fd


def unpin_user_pages(fd: int) -> None:
    """Unregister the buffer (its pins go at once; closing the ring alone would drop them
    later, from a worker) and close the ring."""
    try:
        _check(_libc.syscall(ctypes.c_long(SYS_IO_URING_REGISTER), _INT(fd), _UINT(IORING_UNREGISTER_BUFFERS),
                             None, _UINT(0)))
    finally:
        os.close(fd)


def memset(addr: int, value: int, length: int) -> None:
    ctypes.memset(addr, value, length)


def read_byte(addr: int) -> int:
    return ctypes.string_at(addr, 1)[0]
