"""glibc's allocator, for the benchmarks and the memory checks that depend on its state.

Large CPU runs hand freed tensors back to glibc, which keeps them or not depending on the
process's history; `trim` and `steady` make that explicit. Both are no-ops off glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


@functools.lru_cache(maxsize=1)
def libc() -> ctypes.CDLL | None:
    """The C library's handle, or None when it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def trim() -> bool:
    """Return the heap's free memory to the system (``malloc_trim(0)``); False off glibc."""
    lib = libc()
    if lib is None:
        return False
    try:
        lib.malloc_trim(0)
    except AttributeError:  # a C library without malloc_trim (not glibc)
        return False
    return True


def steady() -> bool:
    """Keep the allocator in one state for the rest of the process: large blocks from the heap
    (no per-size mmap), freed memory never trimmed. False when mallopt is unavailable."""
    lib = libc()
    try:
        return bool(lib is not None and lib.mallopt(M_MMAP_THRESHOLD, 1 << 30)
                    and lib.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))
    except AttributeError:
        return False
