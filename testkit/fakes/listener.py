"""One ESL connection, FreeSWITCH's side: command dispatch in mod_event_socket's order,
event subscriptions and filters, and the inbound (client-connects) flavour.

Replies and events go through one queue and one writer greenlet, so they reach the client
in the order FreeSWITCH would write them and never interleave.
"""

from __future__ import annotations

import random
import re
import uuid as uuidlib
from typing import TYPE_CHECKING

import gevent
import gevent.event
import gevent.queue

from testkit.fakes import wire
from testkit.fakes.wire import Command, Event

if TYPE_CHECKING:
    from testkit.fakes.switch import FakeSwitch

_CLOSE = object()

# switch_event.c EVENT_NAMES: `event` ignores any other word (ESL-FACTS 1.6).
EVENT_NAMES = frozenset("""CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE
CHANNEL_CALLSTATE CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE
CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE
CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK
CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP
SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE
PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC
BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE
DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE
SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT
CLIENT_DISCONNECTED SERVER_DISCONNECTED SEND_INFO RECV_INFO RECV_RTCP_MESSAGE
SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START RECORD_STOP PLAYBACK_START PLAYBACK_STOP
CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START MEDIA_BUG_STOP CONFERENCE_DATA_QUERY
CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT CALL_DETAIL DEVICE_STATE TEXT
SHUTDOWN_REQUESTED CERT_RELOAD ALL""".split())

# ESL-FACTS 2.5: the fixed list `myevents` enables (no PLAYBACK_*, RECORD_*, BACKGROUND_JOB).
MYEVENTS = frozenset("""CHANNEL_ANSWER CHANNEL_APPLICATION CHANNEL_BRIDGE CHANNEL_CREATE
CHANNEL_DATA CHANNEL_DESTROY CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP
CHANNEL_HANGUP_COMPLETE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_OUTGOING CHANNEL_PARK
CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_STATE CHANNEL_UNBRIDGE CHANNEL_UNPARK
DETECTED_SPEECH DTMF NOTALK TALK""".split())

LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5,
              "info": 6, "debug": 7}


def event_type(word: str) -> str | None:
    """switch_name_event: case-insensitive, any 13-character prefix such as SWITCH_EVENT_."""
    upper = word.upper()
    if upper in EVENT_NAMES:
        return upper
    if len(upper) > 13 and upper[13:] in EVENT_NAMES:
        return upper[13:]
    return None


class EslConnection:
    """The parts inbound and outbound connections share (mod_event_socket.c parse_command)."""

    def __init__(self, switch: "FakeSwitch", sock, command_log: list[str]) -> None:
        self.switch = switch
        self.sock = sock
        self.command_log = command_log
        self.session_uuid: str | None = None   # set for outbound (and inbound myevents <uuid>)
        self.events: set[str] = set()
        self.events_on = False
        self.fmt = "plain"
        self.filters: list[tuple[str, str]] = []
        self.myevents = False
        self.logging = False
        self.closed = gevent.event.Event()
        self.closing = False
        self._held: list[bytes] | None = None
        self._out: gevent.queue.Queue = gevent.queue.Queue()
        self._rng = random.Random(switch.segment_seed) if switch.segment_writes else None

    # -- I/O -----------------------------------------------------------------------------
    def start(self) -> None:
        self.switch.spawn(self._write_loop)
        self.switch.spawn(self._read_loop)

    def send(self, data: bytes) -> None:
        if not self.closing:
            self._out.put(data)

    def close_after_pending(self) -> None:
        if not self.closing:
            self.closing = True
            self._out.put(_CLOSE)

    def abort(self) -> None:
        """FreeSWITCH died: drop the TCP connection without a word."""
        self.closing = True
        self._out.put(_CLOSE)
        self._close_socket()

    def _write_loop(self) -> None:
        while True:
            item = self._out.get()
            if item is _CLOSE:
                break
            try:
                wire.write_frame(self.sock, item, self._rng, self.switch.segment_max_bytes)
            except OSError:
                break
        self._close_socket()

    def _close_socket(self) -> None:
        if self.closed.is_set():
            return
        self.closing = True
        try:
            self.sock.close()
        finally:
            self.closed.set()
            self.on_closed()

    def _read_loop(self) -> None:
        reader = wire.CommandReader()
        while not self.closing:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                commands = reader.feed(data)
            except wire.ProtocolViolation:
                self.finish()
                return
            for command in commands:
                self.command_log.append(command.raw)
                self.handle(command)
                if self.closing:
                    return
        if not self.closing:
            self.closing = True
            self._out.put(_CLOSE)
            self.on_peer_closed()

    # -- events --------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        if self.closing or not self.wants(event):
            return
        frame = wire.event_frame(event, self.fmt)
        if self._held is not None:
            self._held.append(frame)
        else:
            self.send(frame)

    def wants(self, event: Event) -> bool:
        """mod_event_socket event_handler: subscription, then filters, then myevents."""
        if not self.events_on or not ("ALL" in self.events or event.name in self.events):
            return False
        if self.filters and not self._passes_filters(event):
            return False
        if self.myevents:
            send = event.get("Unique-ID") == self.session_uuid
            return send or event.get("Job-Owner-UUID") == self.session_uuid
        return True

    def _passes_filters(self, event: Event) -> bool:
        """ESL-FACTS 1.7: once a filter exists an event needs one positive match; a value
        led by "-" vetoes, "/.../" is a regular expression, anything else a caseless equal."""
        send = False
        for name, raw in self.filters:
            value = event.get(name)
            if value is None:
                continue
            positive, wanted = True, raw
            while wanted[:1] in ("+", "-", " ") and wanted:
                if wanted[0] != " ":
                    positive = wanted[0] == "+"
                wanted = wanted[1:]
            if send and positive:
                continue
            if raw.startswith("/"):
                matched = re.search(wanted.strip("/"), value) is not None
            else:
                matched = value.lower() == wanted.lower()
            if matched:
                if not positive:
                    return False
                send = True
        return send

    # -- commands ------------------------------------------------------------------------
    def handle(self, command: Command) -> None:
        reply = self.dispatch(command)
        if reply is not None:
            self.reply(reply)

    def reply(self, text: str, extra: wire.Headers = ()) -> None:
        self.send(wire.command_reply(text, extra))

    def dispatch(self, command: Command) -> str | None:
        line, low = command.line, command.line.lower()
        if low.startswith("exit") or low.startswith("..."):
            self.reply("+OK bye")
            self.finish()
            return None
        early = self.dispatch_first(command)
        if early is not NotImplemented:
            return early
        if low.startswith("filter "):
            return self.do_filter(line[7:])
        session_reply = self.dispatch_session(command)
        if session_reply is not NotImplemented:
            return session_reply
        if low.startswith("sendmsg"):
            return self.do_sendmsg(command)
        if not self.full_control():
            return "-ERR command not found"
        if low.startswith("api "):
            self.do_api(line[4:])
            return None
        if low.startswith("bgapi "):
            return self.do_bgapi(command)
        return self.dispatch_rest(line, low)

    def dispatch_rest(self, line: str, low: str) -> str:
        if low.startswith("log"):
            level = line[3:].strip().split(" ")[0] or "debug"
            if level.lower() not in LOG_LEVELS:
                return "-ERR invalid log level"
            self.logging = True
            return "+OK log level %s [%d]" % (level, LOG_LEVELS[level.lower()])
        if low.startswith("linger"):
            return self.do_linger(line)
        if low.startswith("nolinger"):
            return self.do_nolinger()
        if low.startswith("nolog"):
            was, self.logging = self.logging, False
            return "+OK no longer logging" if was else "-ERR not loging"
        if low.startswith("event"):
            return self.do_event(line)
        if low.startswith("nixevent"):
            return self.do_nixevent(line)
        if low.startswith("noevents"):
            if not self.events_on:
                return "-ERR not listening for events"
            self.events_on, self.events = False, set()
            return "+OK no longer listening for events"
        return "-ERR command not found"

    # Hooks the two flavours fill in.
    def dispatch_first(self, command: Command):
        return NotImplemented

    def dispatch_session(self, command: Command):
        return NotImplemented

    def full_control(self) -> bool:
        return True

    def do_linger(self, line: str) -> str:
        return "-ERR not controlling a session"

    def do_nolinger(self) -> str:
        return "-ERR not controlling a session"

    def on_closed(self) -> None:
        pass

    def on_peer_closed(self) -> None:
        pass

    def notice_uuid(self) -> str | None:
        return None

    def finish(self) -> None:
        """Leave the loop: the final disconnect notice, always (ESL-FACTS 1.9), then close."""
        self.send(wire.disconnect_notice(self.notice_uuid()))
        self.close_after_pending()

    def do_event(self, line: str) -> str:
        words = line.split(" ")[1:]
        keys = 0
        for index, word in enumerate(words):
            if index == 0 and word.lower() == "xml":
                # Not faked: the captures show no XML event, so its exact layout is unknown.
                return "-ERR the fake switch sends plain and json events only"
            if index == 0 and word.lower() in ("plain", "json"):
                self.fmt = word.lower()
                continue
            name = event_type(word)
            if name:
                keys += 1
                self.events.add(name)
        if not keys:
            return "-ERR no keywords supplied"
        self.events_on = True
        return "+OK event listener enabled %s" % self.fmt

    def do_nixevent(self, line: str) -> str:
        keys = 0
        for word in line.split(" ")[1:]:
            name = event_type(word)
            if not name:
                continue
            keys += 1
            if name == "ALL":
                self.events = set()
            else:
                if "ALL" in self.events:
                    self.events = set(EVENT_NAMES) - {"ALL"}
                self.events.discard(name)
        if not keys:
            return "-ERR no keywords supplied"
        self.events_on = True
        return "+OK events nixed"

    def do_filter(self, text: str) -> str:
        name, _, value = text.lstrip(" ").partition(" ")
        if name.lower() == "delete" and value:
            name, _, value = value.partition(" ")
            if name.lower() == "all":
                self.filters = []
            else:
                self.filters = [(n, v) for n, v in self.filters
                                if not (n.lower() == name.lower() and (not value or v == value))]
            return "+OK filter deleted. [%s][%s]" % (name, value)
        if not value:
            return "-ERR invalid syntax"
        if name.lower() == "add":
            name, _, value = value.partition(" ")
        self.filters.append((name, value))
        return "+OK filter added. [%s]=[%s]" % (name, value)

    def do_sendmsg(self, command: Command) -> str:
        target = command.line[7:].strip() or command.header("session-id") or ""
        if target == self.session_uuid:
            target = ""
        if not target and self.session_uuid:
            call = self.switch.find_call(self.session_uuid)
        else:
            call = self.switch.find_call(target) if target else None
        if call is None:
            return "-ERR invalid session id [%s]" % target
        call.session.queue_message(command)
        return "+OK"

    def do_api(self, text: str) -> None:
        """api runs inside the listener (ESL-FACTS 1.5): its reply goes out before any event
        fired while it ran."""
        name, _, arg = text.partition(" ")
        self._held = []
        try:
            output = self.switch.api.run(name, arg, self)
        finally:
            held, self._held = self._held, None
        self.send(wire.api_response(output))
        for frame in held:
            self.send(frame)

    def do_bgapi(self, command: Command) -> None:
        name, _, arg = command.line[6:].partition(" ")
        job_uuid = command.header("job-uuid") or str(uuidlib.uuid4())
        self.reply("+OK Job-UUID: %s" % job_uuid, [("Job-UUID", job_uuid)])
        self.switch.spawn(self._background_job, job_uuid, name, arg)
        return None

    def _background_job(self, job_uuid: str, name: str, arg: str) -> None:
        output = self.switch.api.run(name, arg, self) or "Command returned no output!"
        headers = self.switch.core.standard("BACKGROUND_JOB") + [("Job-UUID", job_uuid)]
        if self.session_uuid:
            headers.append(("Job-Owner-UUID", self.session_uuid))
        headers.append(("Job-Command", name))
        if arg:
            headers.append(("Job-Command-Arg", arg))
        self.switch.fire(Event("BACKGROUND_JOB", headers, output))
