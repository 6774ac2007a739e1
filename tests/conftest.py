import gc
import os
import threading
import time

import gevent
import gevent.events
import pytest

# Report any stretch of more than 50 ms of CPU in which the hub did not switch greenlets.
gevent.config.monitor_thread = True
gevent.config.max_blocking_time = 0.05

from tomctl import config, memory  # noqa: E402
from tomctl.engine import Engine  # noqa: E402
from tomctl.metrics import Metrics  # noqa: E402

_blocked: list = []
# The hub thread's CPU clock, its reading at the monitor's last check that found the hub
# switching, and whether the check just made found it blocked; and the hub's CPU spent
# collecting garbage: in all, at that check, and when the pass under way began.
_hub_cpu = {"clock": None, "thread": None, "at_last_switch": 0.0, "blocked": False,
            "gc": 0.0, "gc_at_last_switch": 0.0, "gc_since": None}


def _note_check(hub) -> None:
    # Runs in the monitor thread right after each blocking check.
    if _hub_cpu["clock"] is None:
        _hub_cpu["clock"] = time.pthread_getcpuclockid(hub.thread_ident)
        _hub_cpu["thread"] = hub.thread_ident
    if not _hub_cpu["blocked"]:
        _hub_cpu["at_last_switch"] = time.clock_gettime(_hub_cpu["clock"])
        _hub_cpu["gc_at_last_switch"] = _collecting()
    _hub_cpu["blocked"] = False


def _on_gc(phase: str, info: dict) -> None:
    # A full pass over the test session's heap, hundreds of tests' objects, takes 40 to 65
    # ms on the hub in whatever code allocated last (make test failed twice on one, in
    # pure tests of tomctl/tools): the test process's garbage, not TOM blocking its hub.
    if _hub_cpu["clock"] is None or threading.get_ident() != _hub_cpu["thread"]:
        return
    now = time.clock_gettime(_hub_cpu["clock"])
    if phase == "start":
        _hub_cpu["gc_since"] = now
    elif _hub_cpu["gc_since"] is not None:
        _hub_cpu["gc"] += now - _hub_cpu["gc_since"]
        _hub_cpu["gc_since"] = None


gc.callbacks.append(_on_gc)


def _collecting() -> float:
    """The hub's CPU seconds spent collecting garbage so far, a pass under way included."""
    since = _hub_cpu["gc_since"]
    running = time.clock_gettime(_hub_cpu["clock"]) - since if since is not None else 0.0
    return _hub_cpu["gc"] + running


def _ran_the_hub_for(seconds: float) -> bool:
    """Whether the hub itself ran TOM's code, not the collector, for ``seconds`` of CPU
    since the monitor last found it switching."""
    clock = _hub_cpu["clock"]
    if clock is None:
        return True
    ran = time.clock_gettime(clock) - _hub_cpu["at_last_switch"]
    return ran - (_collecting() - _hub_cpu["gc_at_last_switch"]) >= seconds


def _on_gevent_event(event) -> None:
    if isinstance(event, gevent.events.PeriodicMonitorThreadStartedEvent):
        event.monitor.add_monitoring_function(_note_check, gevent.config.max_blocking_time)
    if isinstance(event, gevent.events.EventLoopBlocked):
        _hub_cpu["blocked"] = True
        # A hub that waited for a core on a busy machine is not blocked by TOM: only a
        # stretch in which the hub itself ran for the whole limit counts.
        if not _ran_the_hub_for(gevent.config.max_blocking_time):
            return
        # Only the hub thread's own stack: the report goes on to dump every other thread,
        # where TOM's worker threads are busy by design.
        _blocked.append("".join(event.info).split("Greenlets")[0].split("Info:")[0])


gevent.events.subscribers.append(_on_gevent_event)


@pytest.fixture(autouse=True)
def hub_never_blocked():
    """Yields the hub's blocked stacks so far; fails the test if TOM's code is in one."""
    gevent.get_hub()  # the monitor thread starts with the hub
    # Each test starts a new stretch: pure tests never switch greenlets, and their CPU, with
    # pytest's own between them, must not add up into one stretch blamed on whichever TOM
    # function the monitor happens to catch (make test once failed so on a 0.1 ms table).
    if _hub_cpu["clock"] is not None:
        _hub_cpu["at_last_switch"] = time.clock_gettime(_hub_cpu["clock"])
        _hub_cpu["gc_at_last_switch"] = _collecting()
    del _blocked[:]
    yield _blocked
    # Only TOM's own code counts: pytest's bookkeeping between tests and the tests' own
    # speech generation also run on the hub, and are not what is being tested.
    blocked = [stack for stack in _blocked if "/tomctl/" in stack]
    assert not blocked, "the gevent hub was blocked for over 50 ms:\n" + "\n".join(
        blocked[:2])


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    settings = config.load({**{key: value for key, value in os.environ.items()
                                if key == "TOM_DEVICE"},
                            "TOM_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))})
    engine = Engine(settings, Metrics())
    engine.start()
    memory.freeze_startup_objects()      # as `tomctl serve` does once its models are loaded
    yield engine
    engine.close()
