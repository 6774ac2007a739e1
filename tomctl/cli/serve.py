"""``tomctl serve``: load the engine and run until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal

import gevent
import gevent.event

from tomctl import config, logs, memory
from tomctl.engine import Engine
from tomctl.listeners import bind_all
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.service import Service
from tomctl.systemd import Watchdog, notify

log = logging.getLogger("tomctl.serve")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help="run TOM (loads the models)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = config.load()
    logs.configure(settings.log)
    listeners = bind_all(settings)       # a port in use stops us before the slow part
    memory.limit_arenas()                # before the models' threads first allocate
    engine = Engine(settings, Metrics())
    stop = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    engine.start()
    service = Service(settings, engine)
    service.start(listeners)
    memory.freeze_startup_objects()      # the models' objects, out of the collector's passes
    gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(service.reload_variants))
    event(log, "ready", models={name: model.device for name, model in engine.models.items()},
          esl_port=service.listener.address[1], freeswitch_link=service.link.state,
          page=f"http://{settings.gateway.host}:{service.gateway.address[1]}/",
          admin_port=service.admin.address[1])
    notify("READY=1")
    watchdog = Watchdog()
    watchdog.start()
    # Signal watchers do not keep gevent's loop alive; a timed wait does.
    while not stop.wait(timeout=3600):
        pass
    event(log, "stopping", active_calls=service.listener.active,
          browser_sessions=service.gateway.connections, drain_s=settings.telephony.drain_s)
    notify("STOPPING=1")
    service.stop(settings.telephony.drain_s)
    watchdog.stop()
    engine.close()
    event(log, "stopped")
    return 0
