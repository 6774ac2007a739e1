"""glibc really gives memory back when TOM asks (tomctl/memory.py)."""

import ctypes
import ctypes.util
import subprocess
import sys
import threading

from tomctl import memory

CHUNK = 4096
CHUNKS = 50_000                   # about 200 MB


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def _fragmented_heap(libc) -> list[int]:
    """Allocate and free most of 200 MB, keeping every 64th chunk: the heap cannot shrink
    from its top, only by giving back the free pages between the kept chunks."""
    chunks = [libc.malloc(CHUNK) for _ in range(CHUNKS)]
    for chunk in chunks:
        ctypes.memset(chunk, 1, CHUNK)
    for number, chunk in enumerate(chunks):
        if number % 64:
            libc.free(chunk)
    return chunks[::64]


def test_give_back_returns_the_free_pages_of_a_fragmented_heap():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    result = {}

    def in_a_thread() -> None:          # a thread's own arena, as TOM's model threads have
        kept = _fragmented_heap(libc)
        result["before"] = _rss_mb()
        result["gave_back"] = memory.give_back()
        result["after"] = _rss_mb()
        for chunk in kept:
            libc.free(chunk)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert result["gave_back"]
    assert result["before"] - result["after"] > 100, result


def test_startup_objects_stay_out_of_the_collectors_later_passes():
    # In a process of its own: freezing is for the whole process, and for good.
    script = (
        "import gc\n"
        "from tomctl import memory\n"
        "class Model: pass\n"
        "loaded = [Model() for _ in range(1000)]\n"
        "frozen = memory.freeze_startup_objects()\n"
        "later = [Model() for _ in range(10)]\n"
        "walked = sum(isinstance(o, Model) for o in gc.get_objects())\n"
        "print(frozen, walked)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    frozen, walked = map(int, done.stdout.split())
    assert frozen >= 1000
    assert walked == 10          # a full pass walks what came later, not what was loaded
