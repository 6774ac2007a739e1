"""Everything ``tomctl serve`` runs, wired together once: engine, call listener, ESL link."""

from __future__ import annotations

import time

from tomctl.admin import AdminServer
from tomctl.call.controller import CallController, CallServices
from tomctl.call.registry import CallRegistry
from tomctl.config import Settings
from tomctl.engine import Engine
from tomctl.gateway.server import Gateway
from tomctl.health import Selfcheck
from tomctl.listeners import Listeners, bind_all
from tomctl.loop_lag import LoopLag
from tomctl.privacy import NumberHasher
from tomctl.store.calls import CallStore
from tomctl.telephony.inbound import FreeSwitchLink
from tomctl.telephony.listener import CallListener
from tomctl.telephony.media import PortPool
from tomctl.telephony.prompts import PromptSpool


class Service:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        telephony = settings.telephony
        self.settings = settings
        self.engine = engine
        self.registry = CallRegistry()
        self.spool = PromptSpool(telephony.spool_dir, engine)
        self.ports = PortPool(telephony.media_port_first, telephony.media_port_last)
        self.link = FreeSwitchLink(telephony, engine.metrics)
        self.store = CallStore(settings.store.path, settings.store.store_transcripts,
                               engine.metrics)
        self.calls = CallServices(engine, telephony, self.ports, self.spool, self.registry,
                                  NumberHasher(telephony.number_salt), self.store)
        self.listener = CallListener(telephony, self._handle_call, engine.metrics)
        self.gateway = Gateway(settings.gateway, engine)
        self.selfcheck = Selfcheck(self)
        self.admin = AdminServer(settings.admin.host, settings.admin.port, self)
        self.loop_lag = LoopLag(engine.metrics)

    def start(self, listeners: Listeners | None = None) -> None:
        """The engine must be started; prompts are written before the first call can come.
        ``listeners``: the ports, bound before the models were loaded (tomctl serve)."""
        listeners = listeners or bind_all(self.settings)
        self.loop_lag.start()
        self.store.start()
        self.spool.start()
        self.listener.start(listeners.esl)
        self.link.start()
        self.gateway.start(listeners.gateway)
        self.admin.start(listeners.admin)

    def stop(self, drain_s: float = 5.0) -> None:
        """Take no new call or browser session, let those in progress go on for up to
        ``drain_s`` (calls still running then go to the dialplan fallback), then stop. The
        admin endpoint and the FreeSWITCH link stay up until the calls are done."""
        deadline = time.monotonic() + drain_s
        self.listener.close()
        self.gateway.close()
        self.listener.stop(max(0.0, deadline - time.monotonic()))
        self.gateway.stop(max(0.0, deadline - time.monotonic()))
        self.admin.stop()
        self.link.stop()
        self.store.close()
        self.loop_lag.stop()

    def _handle_call(self, connection) -> None:
        CallController(connection, self.calls).run()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no call is active (for tests and a graceful stop)."""
        return self.listener.idle.wait(timeout=timeout_s)
