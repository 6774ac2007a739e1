"""The channel's session thread: switch_ivr_park's loop and the apps it runs.

Each 20 ms tick does what the park loop does (ESL-FACTS 3.5): read a frame and send it to
the unicast socket, dequeue a DTMF digit, then run the queued private events (sendmsg,
uuid_broadcast). An app blocks the loop, which is why any playback stops the unicast
stream (CAPTURES 6.3). Hang-up, transfer and the end of socket control leave the loop.
"""

from __future__ import annotations

import math
import time
import uuid as uuidlib
from collections import deque
from typing import TYPE_CHECKING

import gevent
import gevent.event

from testkit.fakes.apps import Apps
from testkit.fakes.channel import TICK_S, cause_name, tick_us
from testkit.fakes.media import CNG_FRAME, Unicast
from testkit.fakes.wire import Command

if TYPE_CHECKING:
    from testkit.fakes.call import FakeCall


def message_from(command: Command) -> dict[str, str]:
    """A sendmsg block as a private event: lower-cased header names, first value wins."""
    headers: dict[str, str] = {}
    for name, value in command.headers:
        headers.setdefault(name.lower(), value)
    if command.body:
        headers["_body"] = command.body
    return headers


class Session(Apps):
    def __init__(self, call: "FakeCall") -> None:
        self.call = call
        self.channel = call.channel
        self.switch = call.switch
        self.queue: deque[dict[str, str]] = deque()
        self.dtmf: deque[str] = deque()
        self.started = gevent.event.Event()  # connect seen, listener gone, or channel died
        self.down = False
        self.transfer: tuple[str, str, str] | None = None
        self.released = False      # CF_CONTROLLED cleared: the socket listener ended
        self.no_listener = False   # the TCP connect to TOM failed
        self.break_flag = False
        self.locked = 0            # an event-lock message is running
        self.unicast: Unicast | None = None
        self.unicasts: list[Unicast] = []      # every fork the call had, kept for the tests
        self.unicast_state = "none"  # none | pending | running | dead
        self.displace_active = False
        self.hang_armed = False
        self.hung = False
        self.gone = False          # CHANNEL_HANGUP_COMPLETE fired
        self.answer_mono: float | None = None
        self.socket_app_uuid = str(uuidlib.uuid4())
        self.cng_frames = set(call.cng_frames)
        self._cng_shift = 0
        self._tx_index = 0
        self._base = time.monotonic()
        self._base_us = tick_us()
        self._tick = self._base
        self._park_fired_early = False
        self.last_app: tuple[str, str | None] = ("socket", self.channel.socket_arg)

    # -- requests from other greenlets ---------------------------------------------------
    def queue_message(self, command: Command | dict[str, str]) -> None:
        if not self.gone and not self.hung:
            self.queue.append(command if isinstance(command, dict) else message_from(command))

    def hangup(self, cause: str) -> bool:
        """switch_channel_hangup: CHANNEL_HANGUP fires in the caller's own context."""
        if self.down or self.gone:
            return False
        self.down = True
        self.channel.hangup_cause = cause
        self.channel.answer_state = "hangup"
        self.channel.state_number = 10
        self.fire("CHANNEL_HANGUP")
        self.call._on_hangup(cause)
        self.started.set()
        if self.hung:
            self.call._on_channel_down()
        return True

    def request_transfer(self, ext: str, dialplan: str = "XML", context: str = "default") -> bool:
        """switch_ivr_session_transfer: a new caller profile, then the park loop ends."""
        if self.down or self.gone or self.hung:
            return False
        ch = self.channel
        source = "%d:%s:bl_xfer:%s/%s/%s" % (time.time(), uuidlib.uuid4(), ext, context, dialplan)
        ch.rdnis, ch.destination, ch.dialplan = ch.destination, ext, dialplan
        ch.profile_index += 1
        ch.profile_created_us = ch.clock()
        ch.transfer_source = source
        if "max_forwards" not in ch.variables:
            ch.set_var("max_forwards", "70")
        ch.set_var("transfer_history", source)
        ch.set_var("transfer_source", source)
        ch.state_number = 2
        self.transfer = (ext, dialplan, context)
        self.call._on_transfer(ext)
        return True

    def release_control(self) -> None:
        self.released = True

    def request_break(self, flush: bool) -> None:
        if flush:
            self.queue.clear()
        self.break_flag = True

    # -- the session thread --------------------------------------------------------------
    def fire(self, name: str, tail=(), head=()) -> None:
        self.switch.fire(self.channel.event(name, tail, head))

    def fire_park_now(self) -> None:
        """CHANNEL_PARK before the client's myevents took effect (seen once in 7 runs)."""
        self._park_fired_early = True
        self.fire("CHANNEL_PARK")

    def clock_us(self) -> int:
        """Event-Date-Timestamp: the 20 ms tick of this session's timer (CAPTURES 4: events of
        one tick share it; the DTMF events of 02-s1 are 20000 us apart)."""
        return self._base_us + math.floor((time.monotonic() - self._base) / TICK_S) * 20_000

    def run(self) -> None:
        self.started.wait()
        self._base = self._tick = time.monotonic()
        self._base_us = tick_us()
        self.channel.clock = self.clock_us
        park_app: tuple[str, str | None, str] = ("socket", self.channel.socket_arg,
                                                 self.socket_app_uuid)
        # MES:532-542: the socket app parks once connect came, the listener ended or the
        # channel died; with no listener at all (TCP refused) it returns without parking.
        socket_park = True
        while True:
            if not self.down and not (socket_park and self.no_listener):
                self._park(socket_park)
                self.fire("CHANNEL_UNPARK")
                self._teardown_unicast(at_park_end=True)
            self._complete(*park_app)
            if self.down:
                self._hangup_tail()
                return
            if not self.transfer:                     # control released: the dialplan goes on
                self.call._on_fallback()
                self._exec_app("transfer", self.switch.fallback_extension, str(uuidlib.uuid4()))
            ext = self.transfer[0] if self.transfer else self.switch.fallback_extension
            park_app = self._enter_extension(ext)
            socket_park = False

    def _leave_park(self, socket_park: bool) -> bool:
        return bool(self.down or self.transfer or (socket_park and self.released))

    def _park(self, socket_park: bool) -> None:
        if not self._park_fired_early:
            self._sleep_tick()
            self.fire("CHANNEL_PARK")
        self._park_fired_early = False
        while not self._leave_park(socket_park):
            now = self._sleep_tick()
            if self._leave_park(socket_park):
                return
            self._unicast_tick(now)
            self._dtmf_tick()
            self._process_queue()

    def _enter_extension(self, ext: str) -> tuple[str, str | None, str]:
        """After a transfer (11-transfer): two CHANNEL_STATEs, then the new extension, which
        answers and parks (the captured 7001; every fake extension does the same)."""
        ch = self.channel
        self.transfer = None
        ch.set_state("CS_ROUTING", "RINGING")
        self.fire("CHANNEL_STATE")
        ch.set_state("CS_EXECUTE", "ACTIVE")
        self.fire("CHANNEL_STATE")
        ch.set_var("call_uuid", ch.uuid)
        self._exec_app("answer", None, str(uuidlib.uuid4()))
        park_uuid = str(uuidlib.uuid4())
        self._exec_start("park", None, park_uuid)
        return ("park", None, park_uuid)

    def _hangup_tail(self) -> None:
        ch = self.channel
        ch.set_state("CS_HANGUP")
        self.fire("CHANNEL_STATE")
        ch.hangup_us = ch.clock()
        ch.set_state("CS_REPORTING", "HANGUP")
        self.fire("CHANNEL_STATE")
        ch.set_cdr_variables(*self.last_app)
        # CAPTURES 7 / ESL-FACTS 5.3: Hangup-Cause once before the channel data, once in it.
        self.fire("CHANNEL_HANGUP_COMPLETE", head=[("Hangup-Cause", ch.hangup_cause or "")])
        self.gone = True
        self._close_unicast()
        self.call._on_hangup_complete()

    def _sleep_tick(self) -> float:
        """Sleep to the next 20 ms tick of a monotonic grid; late ticks are skipped, not
        caught up (live audio, no backlog)."""
        now = time.monotonic()
        index = math.floor((now - self._base) / TICK_S) + 1
        target = self._base + index * TICK_S
        gevent.sleep(max(0.0, target - now))
        self._tick = target
        return target

    def _unicast_tick(self, now: float) -> None:
        if self.unicast_state == "pending":
            self.unicast_state = "running"   # the park loop's first pass starts the stream
            self.call._notify()
        if self.unicast_state != "running" or self.unicast is None:
            return
        if self._tx_index in self.cng_frames:
            frame = CNG_FRAME                # inserted: later audio shifts by a frame (s2)
            self._cng_shift += 1
        else:
            index = round((now - (self.answer_mono or now)) / TICK_S) - 1 - self._cng_shift
            frame = self.call.caller.frame(index)
        self._tx_index += 1
        self.unicast.send(frame)

    def _dtmf_tick(self) -> None:
        if self.dtmf:
            digit = self.dtmf.popleft()
            self.channel.digits += digit
            # 02-s1: DTMF carries no variables; Duration is in samples.
            self.fire("DTMF", [("DTMF-Digit", digit), ("DTMF-Duration", "2000"),
                               ("DTMF-Source", "UNKNOWN")])

    def _process_queue(self) -> None:
        """switch_ivr_parse_all_events; nothing is dequeued under an event-lock (3.2)."""
        while self.queue and not self.locked and not self.down and not self.hung:
            self._parse_event(self.queue.popleft())
            if self.transfer:
                return

    def _parse_event(self, msg: dict[str, str]) -> None:
        command = msg.get("call-command", "")
        lock = any(msg.get(k, "").lower() == "true" for k in ("event-lock", "event-lock-pri"))
        self.locked += lock
        try:
            if command == "execute":
                self._execute_message(msg)
            elif command == "hangup":
                self.hangup(cause_name(msg.get("hangup-cause")))
            elif command == "unicast":
                self._activate_unicast(msg)
            else:  # IVR:505-527 hashes the value case-sensitively
                self.call._log_error("call-command %r not handled by the fake" % command)
        finally:
            self.locked -= lock

    def _execute_message(self, msg: dict[str, str]) -> None:
        app = msg.get("execute-app-name")
        if not app:
            return
        arg = msg.get("execute-app-arg") or None
        if not arg and msg.get("content-type", "").lower() == "text/plain":
            arg = msg.get("_body") or None
        for _ in range(int(msg.get("lead-frames") or 0)):  # read and discarded (3.2)
            self._sleep_tick()
            if self.down:
                break
        loops = int(msg.get("loops") or 1)
        app_uuid = msg.get("event-uuid") or None
        count = 0
        while count < loops or loops < 0:
            began = time.monotonic()
            self.channel.set_var("current_loop", str(count + 1))
            self.channel.set_var("total_loops", str(loops))
            self._exec_app(app, arg, app_uuid or str(uuidlib.uuid4()), msg.get("event-uuid-name"))
            count += 1
            if self.down or time.monotonic() - began < 0.5 or self.hung:
                break   # IVR:652: a short iteration ends the loop
        self.channel.set_var("current_loop", None)
        self.channel.set_var("total_loops", None)

    def _exec_start(self, app: str, arg: str | None, app_uuid: str,
                    uuid_name: str | None = None) -> None:
        """switch_core_session_exec up to the app (CSS:2930-2960)."""
        ch = self.channel
        ch.set_var("current_application", app)
        ch.set_var("current_application_data", arg)
        ch.set_var("current_application_response", None)
        self.fire("CHANNEL_EXECUTE", self._app_headers(app, arg, app_uuid, uuid_name))
        self.break_flag = False
        ch.set_var("current_application", app)
        self.last_app = (app, arg)

    def _complete(self, app: str, arg: str | None, app_uuid: str,
                  uuid_name: str | None = None) -> None:
        response = self.channel.variables.get("current_application_response") or "_none_"
        tail = self._app_headers(app, arg, app_uuid, uuid_name)
        tail.insert(len(tail) - 1 - bool(uuid_name), ("Application-Response", response))
        self.fire("CHANNEL_EXECUTE_COMPLETE", tail)

    @staticmethod
    def _app_headers(app, arg, app_uuid, uuid_name):
        headers = [("Application", app)]
        if arg:
            headers.append(("Application-Data", arg))
        headers.append(("Application-UUID", app_uuid))
        if uuid_name:
            headers.append(("Application-UUID-Name", uuid_name))
        return headers

    def _exec_app(self, app: str, arg: str | None, app_uuid: str,
                  uuid_name: str | None = None) -> None:
        handler = getattr(self, "_app_" + app, None)
        if handler is None:
            self.call._log_error("Invalid Application %s" % app)
            return
        self._exec_start(app, arg, app_uuid, uuid_name)
        handler(arg)
        if not self.hung:
            self._complete(app, arg, app_uuid, uuid_name)

    # -- unicast -------------------------------------------------------------------------
    def _activate_unicast(self, msg: dict[str, str]) -> None:
        if self.unicast_state == "dead":
            self.call._log_error("Created unicast connection, then Shutting down unicast "
                                 "connection 20 ms later: no packets after a playback "
                                 "(CAPTURES 6.3)")
            return
        if not self.channel.answered_us:
            self.call._log_error("unicast before answer: FreeSWITCH may abort "
                                 "(ESL-FACTS 3.5)")
            return
        if self.unicast_state in ("pending", "running"):
            self.call._log_error("unicast requested while one is active")
            return
        local = (msg.get("local-ip") or "127.0.0.1", int(msg.get("local-port") or 8025))
        remote = (msg.get("remote-ip") or "127.0.0.1", int(msg.get("remote-port") or 8026))
        unicast = Unicast(local, remote, self._on_datagram, spawn=self.switch.spawn)
        if not unicast.open():
            self.call._log_error("Failure creating unicast connection")
            return
        self.unicast, self.unicast_state = unicast, "pending"
        self.unicasts.append(unicast)
        self._tx_index = 0
        self._cng_shift = 0

    def _on_datagram(self, at: float, data: bytes) -> None:
        if self.displace_active:
            self.hang_armed = True   # CAPTURES 6.6: injection while displace runs
        self.call._on_heard(at, data)

    def _teardown_unicast(self, at_park_end: bool) -> None:
        """switch_ivr_deactivate_unicast. After a playback a running stream is gone for good
        (6.3); at the end of a park a later park starts afresh."""
        if self.unicast_state == "running" and self.hang_armed:
            self._hang()
        previous = self.unicast_state
        self._close_unicast()
        if previous == "running" and not at_park_end:
            self.unicast_state = "dead"
        elif previous != "dead":
            self.unicast_state = "none"

    def _close_unicast(self) -> None:
        if self.unicast is not None:
            self.unicast.close()
            self.unicast = None

    def _hang(self) -> None:
        """CAPTURES 6.6: the teardown blocks in switch_core_codec_destroy forever."""
        self.hung = True
        self._close_unicast()
        self.call._log_error("session thread hung tearing down unicast after "
                                       "displace + injected audio (CAPTURES 6.6)")
        if self.down:
            self.call._on_channel_down()
        self.call._notify()
        gevent.event.Event().wait()   # until the switch is stopped (greenlet killed)
