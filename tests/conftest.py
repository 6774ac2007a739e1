import os

import gevent
import gevent.events
import pytest

# Report any stretch of more than 50 ms in which the hub could not switch greenlets.
gevent.config.monitor_thread = True
gevent.config.max_blocking_time = 0.05

from tomctl import config  # noqa: E402
from tomctl.engine import Engine  # noqa: E402
from tomctl.metrics import Metrics  # noqa: E402

_blocked: list = []


def _on_gevent_event(event) -> None:
    # Only TOM's own code counts: pytest's bookkeeping between tests and the tests' own
    # speech generation also run on the hub, and are not what is being tested.
    if isinstance(event, gevent.events.EventLoopBlocked):
        # Only the hub thread's own stack: the report goes on to dump every other thread,
        # where TOM's worker threads are busy by design.
        blocked_stack = "".join(event.info).split("Greenlets")[0].split("Info:")[0]
        if "/tomctl/" in blocked_stack:
            _blocked.append(blocked_stack)


gevent.events.subscribers.append(_on_gevent_event)


@pytest.fixture(autouse=True)
def hub_never_blocked():
    gevent.get_hub()  # the monitor thread starts with the hub
    del _blocked[:]
    yield
    blocked = list(_blocked)
    assert not blocked, "the gevent hub was blocked for over 50 ms:\n" + "\n".join(
        blocked[:2])


@pytest.fixture(scope="session")
def engine():
    settings = config.load({key: value for key, value in os.environ.items()
                            if key == "TOM_DEVICE"})
    engine = Engine(settings, Metrics())
    engine.start()
    yield engine
    engine.close()
