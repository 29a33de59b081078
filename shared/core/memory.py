"""Memory a worker process gives back to the system."""

import ctypes
import platform
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
FIXED_THRESHOLD = 128 * 1024  # glibc's own default, before it starts raising it


def give_back_freed_memory() -> bool:
    """Keep glibc's malloc from holding on to what the models free; whether the setting took."""
    # glibc raises its mmap threshold each time a large block is freed, so that later large
    # blocks (a model's buffers, a batch's activations) come from the heap, whose freed middle
    # it cannot return. Fixed at 128 KiB, large blocks keep mappings of their own, unmapped when
    # freed. Elsewhere (macOS, musl) this is a no-op.
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    took = [mallopt(option, FIXED_THRESHOLD) for option in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD)]
    return took == [1, 1]
