"""A page's contents (~ include/linux/highmem.h, where copy_highpage() and
memcpy_to_page() live): ``Folio.data`` keeps an int per page while every byte holds it,
a bytearray once a page is written in part."""

from __future__ import annotations

from ..uapi import PAGE_SIZE

_ZERO_PAGE_BYTES = bytes(PAGE_SIZE)


def page_is_zero(data) -> bool:
    """Does a page (an entry of Folio.data) hold only zero bytes?"""
    return data == 0 if isinstance(data, int) else data == _ZERO_PAGE_BYTES


def page_copy(data):
    """The contents of a page, for a new page (copy-on-write, fork's early copy)."""
    return data if isinstance(data, int) else bytearray(data)


def page_load(folio, page: int, offset: int) -> int:
    data = folio.data[page]
    return data if isinstance(data, int) else data[offset]


def folio_store(folio, offset: int, length: int, value: int) -> None:
    """Store ``value`` in bytes [offset, offset + length) of ``folio``. Whole pages just take
    the value; a page written in part gets a bytearray of its own."""
    data = folio.data
    end = offset + length
    whole_lo, whole_hi = -(-offset // PAGE_SIZE), end // PAGE_SIZE
    if whole_lo < whole_hi:
        data[whole_lo:whole_hi] = [value] * (whole_hi - whole_lo)
    for page in {offset // PAGE_SIZE, (end - 1) // PAGE_SIZE}:
        if whole_lo <= page < whole_hi:
            continue
        base = page * PAGE_SIZE
        lo, hi = max(offset, base) - base, min(end, base + PAGE_SIZE) - base
        old = data[page]
        if isinstance(old, int):
            if old == value:
                continue
            old = data[page] = bytearray([old]) * PAGE_SIZE
        old[lo:hi] = bytes([value]) * (hi - lo)
