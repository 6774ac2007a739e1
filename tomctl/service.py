"""Everything ``tomctl serve`` runs, wired together once: engine, call listener, ESL link."""

from __future__ import annotations

import logging
import time

import gevent

from tomctl import memory
from tomctl.admin import AdminServer
from tomctl.call.controller import CallController, CallServices
from tomctl.call.registry import CallRegistry
from tomctl.config import Recording, Settings
from tomctl.engine import Engine
from tomctl.gateway.server import Gateway
from tomctl.health import Selfcheck
from tomctl.listeners import Listeners, bind_all
from tomctl.logs import event
from tomctl.loop_lag import LoopLag
from tomctl.privacy import NumberHasher
from tomctl.recording import retention
from tomctl.recording.recorder import BrowserRecordings, RecordingWriter
from tomctl.store.calls import CallStore
from tomctl.telephony.inbound import FreeSwitchLink
from tomctl.telephony.listener import CallListener
from tomctl.telephony.media import PortPool
from tomctl.telephony.prompts import PromptSpool
from tomctl.learning.browser import BrowserLearning
from tomctl.learning.learner import Learner
from tomctl.learning.variants import phrase_name, speaks_its_own
from tomctl.tools import hub as tool_hub

log = logging.getLogger(__name__)

GIVE_BACK_EVERY_S = 60.0         # fragmentation builds up over minutes, not seconds


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
        self.recorder = (RecordingWriter(settings.recording.path, engine.metrics,
                                         self._recording_finished)
                         if settings.recording.mode is not Recording.OFF else None)
        self.tools = tool_hub.build(settings, engine.metrics)
        self.learner = Learner(settings.learning, settings.persona, self.store, engine.metrics)
        self.calls = CallServices(engine, telephony, self.ports, self.spool, self.registry,
                                  NumberHasher(telephony.number_salt), self.store,
                                  settings.recording, self.recorder, self.tools, self.learner,
                                  settings.learning)
        self.listener = CallListener(telephony, self._handle_call, engine.metrics)
        self.gateway = Gateway(settings.gateway, engine, BrowserRecordings(
            settings.recording.mode.value, self.recorder, self.store) if self.recorder else None,
            self.tools, BrowserLearning(self.learner, self.store, engine.metrics))
        self.selfcheck = Selfcheck(self)
        self.admin = AdminServer(settings.admin.host, settings.admin.port, self)
        self.loop_lag = LoopLag(engine.metrics)
        self._giving_back: gevent.Greenlet | None = None

    def start(self, listeners: Listeners | None = None) -> None:
        """The engine must be started; prompts are written before the first call can come.
        ``listeners``: the ports, bound before the models were loaded (tomctl serve)."""
        listeners = listeners or bind_all(self.settings)
        self.loop_lag.start()
        self._giving_back = gevent.spawn(memory.give_back_every, GIVE_BACK_EVERY_S)
        self.store.start()
        variants = self.learner.load()
        self._prepare_variants(variants)
        self.learner.start(variants)
        if self.recorder is not None:
            self.recorder.start()
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
        if self.recorder is not None:
            self.recorder.close()
        self.store.close()
        self.loop_lag.stop()
        if self._giving_back is not None:
            self._giving_back.kill(block=False)

    def reload_variants(self) -> None:
        """SIGHUP: the variants file again, for new calls; running calls keep theirs."""
        self.learner.reload(self._prepare_variants)

    def _prepare_variants(self, variants) -> None:
        """Load the variants' own voices and say their fixed phrases their way, before a
        call can be given one of them."""
        persona = self.engine.persona
        for variant in variants:
            if variant.voice:
                self.engine.add_voice(variant.voice)
            if speaks_its_own(variant):
                for name, text in persona.phrases.items():
                    if name == "greeting" and variant.greeting:
                        text = variant.greeting
                    self.engine.add_phrase(phrase_name(name, variant), text,
                                           variant.length_scale, variant.voice)

    def _recording_finished(self, recording, qc: dict | None) -> None:
        """On the hub, once a recording is closed and checked."""
        self.store.recording(recording.sidecar(), qc)
        self.engine.metrics.recordings.labels(
            result="failed" if recording.error else "complete").inc()
        if qc is not None:
            self.engine.metrics.record_qc(qc)
        event(log, "recording_finished", call=recording.call_id,
              seconds=round(recording.seconds, 1), dropped_frames=recording.dropped_frames,
              error=recording.error or None, qc=qc["verdict"] if qc else None)

    def purge(self, dry_run: bool = False) -> dict:
        """Retention: call records past TOM_STORE_RETENTION_DAYS, recordings past
        TOM_RECORDING_RETENTION_HOURS or without a call record (``dry_run``: only say)."""
        days = self.settings.store.retention_days
        hours = self.settings.recording.retention_hours
        result = {"dry_run": dry_run, "retention_days": days, "recording_retention_hours": hours,
                  **self.store.purge(days * 86400, dry_run)}
        directory = self.settings.recording.path
        going = retention.expired(directory, hours * 3600, self.store.known_calls)
        result["recordings"] = going
        if not dry_run:
            names = going["expired"] + going["orphaned"]
            result["recordings_not_deleted"] = retention.delete(directory, names)
            self.store.forget_recordings(sorted({name.split(".")[0] for name in names
                                                 if name.endswith(".wav")}))
        return result

    def _handle_call(self, connection) -> None:
        CallController(connection, self.calls).run()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no call is active (for tests and a graceful stop)."""
        return self.listener.idle.wait(timeout=timeout_s)
