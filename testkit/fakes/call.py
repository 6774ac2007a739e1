"""FakeCall: one caller dialling in, as the product's tests see it.

The dialplan modelled is `socket <tom> async full`, then `transfer <fallback_extension>`.
Everything a test may want to assert on is recorded here; every wait has a timeout.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import TYPE_CHECKING, Callable, Iterable

import gevent
import gevent.event
from gevent import socket

from testkit.fakes.channel import TICK_S, Channel, cause_name
from testkit.fakes.media import CallerAudio
from testkit.fakes.outbound import OutboundSocket
from testkit.fakes.session import Session

if TYPE_CHECKING:
    from testkit.fakes.switch import FakeSwitch


class FakeCall:
    def __init__(self, switch: "FakeSwitch", caller_audio: bytes, caller_id_number: str,
                 caller_id_name: str, destination: str, cng_frames: Iterable[int] = (),
                 miss_park_event: bool = False, a_uuid: str | None = None) -> None:
        self.switch = switch
        self.caller = CallerAudio(caller_audio)
        self.cng_frames = frozenset(cng_frames)
        self.initial_destination = destination
        self.miss_park_event = miss_park_event
        host, port = switch.tom_address
        self.channel = Channel(switch.core, caller_id_number, caller_id_name, destination,
                               "%s:%d async full" % (host, port), a_uuid or str(uuidlib.uuid4()))
        self.session = Session(self)
        self.connection: OutboundSocket | None = None
        self.commands: list[str] = []          # every command block TOM sent, raw
        self.errors_logged: list[str] = []     # what FreeSWITCH would log as an error
        self.heard: list[tuple[float, bytes]] = []
        self.played: list[dict] = []
        self.dtmf_to_caller: list[str] = []
        self.transferred_to: str | None = None
        self.fell_back = False
        self.stuck = False
        self.displace_used = False
        self.hung_up = False
        self.hangup_cause: str | None = None
        self.hangup_complete = False
        self.connected = False
        self.tcp_closed = False
        self.died = False                      # the switch was stopped under it
        self._answered_at: float | None = None
        self._change = gevent.event.Event()

    # -- identity and state --------------------------------------------------------------
    @property
    def uuid(self) -> str:
        return self.channel.uuid

    @property
    def a_uuid(self) -> str:
        """The loopback A leg (the caller's side): origination_uuid, what originate returns."""
        return self.channel.a_uuid

    @property
    def answered(self) -> bool:
        return self._answered_at is not None

    @property
    def answered_at(self) -> float | None:
        """time.monotonic() of the answer (the tick CHANNEL_ANSWER fired in), else None."""
        return self._answered_at

    @property
    def unicast_active(self) -> bool:
        return self.session.unicast_state == "running"

    @property
    def session_hung(self) -> bool:
        return self.session.hung

    @property
    def audio_position_s(self) -> float:
        """Seconds since answer: where the caller is in its audio (silence after its end)."""
        return 0.0 if self._answered_at is None else time.monotonic() - self._answered_at

    @property
    def ended(self) -> bool:
        if self.died:
            return True
        return self.tcp_closed and (self.hangup_complete or self.transferred_to is not None
                                    or self.fell_back)

    def heard_pcm(self) -> bytes:
        return b"".join(data for _, data in self.heard)

    def sent_frames(self) -> list[tuple[float, bytes]]:
        """Every caller frame the unicast fork sent TOM, with when it left."""
        return [sent for unicast in self.session.unicasts for sent in unicast.sent_frames]

    # -- what the caller does ------------------------------------------------------------
    def say(self, pcm: bytes) -> float:
        """The caller speaks ``pcm`` from the next frame not yet sent; returns where it
        starts, in seconds of caller audio since the answer (see ``audio_position_s``)."""
        next_index = int(self.audio_position_s / TICK_S) + 1
        return self.caller.say(pcm, next_index) * TICK_S

    def send_dtmf(self, digits: str) -> None:
        """The caller presses keys: DTMF events 20 ms apart, as `uuid_send_dtmf <A>` gave."""
        self.session.dtmf.extend(digits)

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The caller hangs up (modelled on `uuid_kill <A>`, CAPTURES 7)."""
        self.session.hangup(cause_name(cause))

    def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes on the outbound TCP connection."""
        if self.connection is not None:
            self.connection.send(data)

    # -- waiting -------------------------------------------------------------------------
    def _notify(self) -> None:
        change, self._change = self._change, gevent.event.Event()
        change.set()

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("%s not within %.1f s" % (what, timeout_s))
            self._change.wait(remaining)
        return True

    def wait_connected(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.connected, timeout_s, "connect")

    def wait_answered(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.answered, timeout_s, "answer")

    def wait_hung_up(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.hung_up, timeout_s, "hang-up")

    def wait_closed(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.tcp_closed, timeout_s, "TCP close")

    def wait_ended(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.ended, timeout_s, "end of call")

    def wait_heard(self, min_bytes: int, timeout_s: float) -> bool:
        return self.wait_for(lambda: sum(len(d) for _, d in self.heard) >= min_bytes,
                             timeout_s, "%d bytes heard" % min_bytes)

    def wait_played(self, timeout_s: float, count: int = 1) -> bool:
        """Until ``count`` playbacks have finished (done, break or not found)."""
        return self.wait_for(lambda: sum(1 for p in self.played if p["status"]) >= count,
                             timeout_s, "%d playbacks" % count)

    def wait_unicast(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.unicast_active, timeout_s, "unicast stream")

    def wait_transferred(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.transferred_to is not None, timeout_s, "transfer")

    def wait_fell_back(self, timeout_s: float) -> bool:
        return self.wait_for(lambda: self.fell_back, timeout_s, "dialplan fallback")

    # -- driven by the switch ------------------------------------------------------------
    def start(self, connect: bool = True) -> None:
        """CHANNEL_CREATE, the dialplan runs `socket`, then TCP to TOM (ESL-FACTS 2.1)."""
        ch = self.channel
        self.switch.fire(ch.event("CHANNEL_CREATE"))
        ch.set_var("call_uuid", ch.uuid)          # CSM:327, when the dialplan executes
        ch.set_state("CS_EXECUTE", "RINGING")
        self.session._exec_start("socket", ch.socket_arg, self.session.socket_app_uuid)
        ch.set_var("socket_host", self.switch.tom_address[0])
        self.switch.spawn(self.session.run)
        if connect:
            self.switch.spawn(self._connect)

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(self.switch.tom_address)
        except OSError:
            sock.close()
            self._log_error("Socket fail! (cannot reach %s:%d)" % self.switch.tom_address)
            self.session.no_listener = True   # the socket app returns; the dialplan goes on
            self.session.release_control()
            self.session.started.set()
            self.tcp_closed = True
            self._notify()
            return
        self.connection = OutboundSocket(self, sock, self.switch.first_command_timeout_s)
        self.switch.register(self.connection)
        self.connection.start()

    def _log_error(self, message: str) -> None:
        self.errors_logged.append(message)
        self._notify()

    def _on_connect(self) -> None:
        if self.connected:
            return
        self.connected = True
        if self.miss_park_event:
            self.session.fire_park_now()
        self.session.started.set()
        self._notify()

    def _on_answer(self) -> None:
        self._answered_at = self.session.answer_mono
        self._notify()

    def _on_heard(self, at: float, data: bytes) -> None:
        self.heard.append((at, data))
        self._notify()

    def _on_hangup(self, cause: str) -> None:
        self.hung_up = True
        self.hangup_cause = cause
        self._notify()

    def _on_transfer(self, ext: str) -> None:
        if not self.fell_back:
            self.transferred_to = ext
        self._notify()

    def _on_fallback(self) -> None:
        self.fell_back = True
        self._notify()

    def _on_channel_down(self) -> None:
        if self.connection is not None:
            self.connection.channel_down()

    def _on_hangup_complete(self) -> None:
        self.hangup_complete = True
        self._on_channel_down()
        self._notify()

    def _on_listener_end(self) -> None:
        """The outbound socket closed (either side): CF_CONTROLLED is cleared (2.7)."""
        self.tcp_closed = True
        if not self.switch.stopping:
            if not self.connected:
                if not self.session.down:
                    self.stuck = True   # exit before connect: parked for ever (2.7, GS #28)
                self.session.started.set()
            else:
                self.session.release_control()
        self._notify()

    def _die(self) -> None:
        self.died = True
        self.session._close_unicast()
        self._notify()
