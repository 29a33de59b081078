"""Memory a long-lived process gives back to the system."""

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
FIXED_THRESHOLD = 128 * 1024  # glibc's own default, before it starts raising it


def give_back_freed_memory() -> bool:
    """Keep glibc's malloc from holding on to what the models free (Linux; elsewhere a no-op).

    glibc raises its mmap threshold each time a large block is freed, so that later large
    blocks (a model's buffers, a batch's activations) come from the heap, whose freed middle it
    cannot return. Fixing the thresholds at 128 KiB keeps large blocks in their own mappings,
    unmapped when freed: measured on a worker process with the embedded model and MPNet, 717 MB
    → 644 MB resident after its first answers. Returns whether the setting took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl)
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, FIXED_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, FIXED_THRESHOLD)
    )
