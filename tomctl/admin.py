"""The loopback admin endpoint (gevent pywsgi): /metrics, /status, /calls, /selfcheck and
POST /synthetic-call and /purge.

/metrics is prometheus_client's own exposition of TOM's registry; /status and /calls are
JSON for ``tomctl status`` and ``tomctl calls``. Bound to loopback by default: it shows
call metadata (hashed numbers only) and needs no login.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from typing import Any, Callable, Iterable

import gevent.pool
import greenlet
from gevent.pywsgi import WSGIServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tomctl import __version__, synthetic
from tomctl.errors import ConfigError
from tomctl.logs import event

log = logging.getLogger(__name__)

LATENCY_WINDOW_S = 15 * 60
FINISHED_CALLS = 20


class AdminServer:
    def __init__(self, host: str, port: int, service: Any) -> None:
        self._address = (host, port)
        self._service = service
        self._server: WSGIServer | None = None
        self.started_at = time.time()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return self._server.address

    def start(self, sock=None) -> None:
        self._server = WSGIServer(sock or self._address, self._app, spawn=gevent.pool.Pool(16),
                                  log=None, error_log=None)
        self._server.start()
        event(log, "admin_listening", host=self._address[0], port=self.address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=2)

    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/synthetic-call" and environ.get("REQUEST_METHOD") == "POST":
            telephony = self._service.settings.telephony
            return _json(start_response, synthetic.run(
                self._service, telephony.synthetic_extension, telephony.transfer_context))
        if path == "/learn" and environ.get("REQUEST_METHOD") == "POST":
            return _json(start_response, self._service.learner.learn())
        if path.startswith("/variants/") and environ.get("REQUEST_METHOD") == "POST":
            return self._variant_action(path, start_response)
        if path == "/purge" and environ.get("REQUEST_METHOD") == "POST":
            dry_run = "dry_run=1" in environ.get("QUERY_STRING", "").split("&")
            return _json(start_response, self._service.purge(dry_run))
        if environ.get("REQUEST_METHOD") != "GET":
            return _reply(start_response, "405 Method Not Allowed", b"GET only\n", "text/plain")
        if path == "/metrics":
            return _reply(start_response, "200 OK",
                          generate_latest(self._service.engine.metrics.registry),
                          CONTENT_TYPE_LATEST)
        if path == "/status":
            return _json(start_response, self.status())
        if path == "/calls":
            return _json(start_response, self.calls())
        if path == "/selfcheck":
            return _json(start_response, self._service.selfcheck.run())
        if path == "/resources":
            return _json(start_response, self.resources())
        if path == "/variants":
            return _json(start_response, {"variants": self._service.learner.table()})
        return _reply(start_response, "404 Not Found", b"not found\n", "text/plain")

    def _variant_action(self, path: str, start_response: Callable) -> Iterable[bytes]:
        """POST /variants/<id>/<pause|resume|pin>, /variants/unpin."""
        learner = self._service.learner
        parts = path.strip("/").split("/")
        try:
            if parts == ["variants", "unpin"]:
                learner.pin("")
            elif len(parts) == 3 and parts[2] in ("pause", "resume", "pin"):
                getattr(learner, parts[2])(parts[1])
            else:
                return _reply(start_response, "404 Not Found", b"not found\n", "text/plain")
        except ConfigError as exc:
            return _reply(start_response, "404 Not Found", f"{exc}\n".encode(), "text/plain")
        return _json(start_response, {"variants": learner.table()})

    def status(self) -> dict:
        service = self._service
        link = service.link
        return {
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at),
            "freeswitch_link": {"state": link.state, "connects": link.connects,
                                "last_error": link.last_error,
                                "last_error_age_s": round(time.time() - link.last_error_at)
                                if link.last_error else None},
            "models": {name: model.device for name, model in service.engine.models.items()},
            "active_calls": len(service.registry.active()),
            "e2e_latency_ms": service.store.latency_summary(LATENCY_WINDOW_S),
            "last_selfcheck": service.selfcheck.last,
            "inference": {**service.engine.scheduler.stats(),
                          "slots": service.engine.budget.slots,
                          "threads_per_job": service.engine.budget.threads_per_job},
            "event_loop_max_lag_ms": round(service.loop_lag.max_s * 1000, 1),
        }

    def resources(self) -> dict:
        """What a leak would grow; for soak runs. Counting greenlets walks the heap (tens of
        ms), so it is here, asked for now and then, and not in /status or /metrics."""
        service = self._service
        return {"greenlets": sum(1 for o in gc.get_objects()
                                 if isinstance(o, greenlet.greenlet) and not o.dead),
                "open_fds": len(os.listdir("/proc/self/fd")),
                "media_ports_in_use": service.ports.in_use,
                "active_calls": service.listener.active,
                "browser_sessions": service.gateway.connections}

    def calls(self) -> dict:
        service = self._service
        return {"active": [record.as_dict() for record in service.registry.active()],
                "finished": service.store.recent_calls(FINISHED_CALLS)}


def _reply(start_response: Callable, status: str, body: bytes,
           content_type: str) -> list[bytes]:
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
    return [body]


def _json(start_response: Callable, payload: dict) -> list[bytes]:
    return _reply(start_response, "200 OK", json.dumps(payload).encode(), "application/json")
