"""A running TOM service (real sockets, the session's models) with the fake FreeSWITCH
pointed at it, for the tests that place calls."""

from __future__ import annotations

import os

import gevent
import numpy as np

from testkit.fakes import FakeSwitch
from tests.leaks import live_greenlets, open_fds, wait_until
from tomctl import config
from tomctl.audio.frames import pcm_to_float, resample
from tomctl.service import Service

RATE = 8000
_next_ports = iter(range(42000, 50000, 40))   # 40 ports for each Phone of the session


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def make_settings(tmp_path, switch_port: int = 1, **overrides) -> config.Settings:
    first = next(_next_ports)
    environ = {"TOM_ESL_LISTEN_PORT": "0", "TOM_MEDIA_PORT_FIRST": str(first),
               "TOM_MEDIA_PORT_LAST": str(first + 39), "TOM_SPOOL_DIR": str(tmp_path / "spool"),
               "TOM_FS_PORT": str(switch_port), "TOM_FS_PASSWORD": "ClueCon",
               "TOM_ESL_COMMAND_TIMEOUT_S": "3", "TOM_NUMBER_HASH_SALT": "test-salt",
               "TOM_GATEWAY_PORT": "0", "TOM_DEV_ALLOW_NO_JWT": "true",
               "TOM_DB_PATH": str(tmp_path / "calls.db"), "TOM_STORE_TRANSCRIPTS": "true",
               "TOM_ADMIN_PORT": "0"}
    environ.update(overrides)
    return config.load(environ)


class Phone:
    """A running TOM service and a fake FreeSWITCH pointed at each other."""

    def __init__(self, engine, tmp_path, **overrides) -> None:
        self.switch = FakeSwitch(tom_address=("127.0.0.1", 1), fallback_extension="operator",
                                 segment_writes=True)
        self.switch.start()
        settings = make_settings(tmp_path, self.switch.esl_port, **overrides)
        self.service = Service(settings, engine)
        self.service.start()
        self.switch.tom_address = ("127.0.0.1", self.service.listener.address[1])
        self.engine = engine
        self.spool = settings.telephony.spool_dir
        wait_until(lambda: self.service.link.state == "up", 10, "the inbound link")
        self.greenlets_at_start = live_greenlets()
        self.fds_at_start = open_fds()

    def call(self, audio: bytes = b"", **kwargs):
        return self.switch.place_call(audio, **kwargs)

    def heard(self, call) -> np.ndarray:
        return pcm_to_float(call.heard_pcm())

    def transcribe_heard(self, call) -> str:
        audio = gevent.get_hub().threadpool.apply(resample, (self.heard(call), RATE, 16000))
        return self.engine.transcribe(audio).text

    def close(self) -> None:
        self.service.stop()
        self.switch.stop()


def assert_nothing_left(phone) -> None:
    """No call, greenlet, socket, UDP port or spool file outlives its call."""
    assert phone.service.wait_idle(timeout_s=10)
    assert phone.service.registry.active() == []
    assert phone.service.ports.in_use == 0
    assert phone.engine.metrics.active_calls._value.get() == 0
    assert sorted({name.split("-")[0] for name in os.listdir(phone.spool)} - {"synthetic"}) == \
        ["fallback", "goodbye", "handover"]
    wait_until(lambda: live_greenlets() <= phone.greenlets_at_start
               and open_fds() <= phone.fds_at_start, 5, "greenlets and sockets to go")
