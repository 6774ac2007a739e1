"""glibc's allocator and Python's collector, told how a long-running TOM wants them to behave.

glibc gives each thread that allocates its own arena, up to eight per core. TOM's model
threads (Whisper, llama.cpp, Piper, the worker pool) each churn through their own, and
memory freed in one arena cannot serve another, so a service that runs for days keeps
growing without leaking. Fewer arenas share their free memory.

Python's collector walks every tracked object in a full pass, on whichever greenlet
allocated last, so on the hub: the models' and settings' objects made at start cost such a
pass about 25 ms, more than a call's 20 ms frame. Those live as long as TOM does.
"""

from __future__ import annotations

import ctypes
import functools
import gc

import gevent

M_ARENA_MAX = -8          # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # The symbols already loaded into the process: no library search (find_library runs
    # ldconfig) each time memory is given back.
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the arenas; only threads that have not allocated yet are affected, so call it
    before the models start. False where the C library is not glibc."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def give_back() -> bool:
    """Return every arena's free pages to the system (it holds each arena's lock for a
    moment: call it from a worker thread)."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def give_back_every(interval_s: float) -> None:
    """Run forever (in a greenlet): every ``interval_s``, give free memory back from a
    worker thread, so that a service that is never idle still returns what a burst of long
    answers left behind."""
    while True:
        gevent.sleep(interval_s)
        gevent.get_hub().threadpool.apply(give_back)


def freeze_startup_objects() -> int:
    """Leave everything alive now out of the collector's later passes; call it once the
    models are loaded. Returns how many objects that is."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
