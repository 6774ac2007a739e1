import os
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
# switching, and whether the check just made found it blocked.
_hub_cpu = {"clock": None, "at_last_switch": 0.0, "blocked": False}


def _note_check(hub) -> None:
    # Runs in the monitor thread right after each blocking check.
    if _hub_cpu["clock"] is None:
        _hub_cpu["clock"] = time.pthread_getcpuclockid(hub.thread_ident)
    if not _hub_cpu["blocked"]:
        _hub_cpu["at_last_switch"] = time.clock_gettime(_hub_cpu["clock"])
    _hub_cpu["blocked"] = False


def _ran_the_hub_for(seconds: float) -> bool:
    clock = _hub_cpu["clock"]
    return clock is None or time.clock_gettime(clock) - _hub_cpu["at_last_switch"] >= seconds


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
