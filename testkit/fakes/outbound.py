"""The outbound socket: FreeSWITCH's `socket <tom> async full` connection for one call.

ESL-FACTS 2.2-2.6 and CAPTURES 5/7: nothing is sent until the client's first command, whose
reply is discarded unless it is `connect`; `connect` answers with the CHANNEL_DATA block;
at hang-up the socket lingers (notice, then the goodbye after the linger time) or sends the
goodbye and closes at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from testkit.fakes import wire
from testkit.fakes.listener import MYEVENTS, EslConnection
from testkit.fakes.wire import Command

if TYPE_CHECKING:
    from testkit.fakes.call import FakeCall

# s3: `linger 3` gave the goodbye 3.2 s after the linger notice (FreeSWITCH compares whole
# epoch seconds, so anything in (N, N+1] s is faithful).
LINGER_GRACE_S = 0.2


class OutboundSocket(EslConnection):
    def __init__(self, call: "FakeCall", sock, first_command_timeout_s: float) -> None:
        super().__init__(call.switch, sock, call.commands)
        self.call = call
        self.session_uuid = call.uuid
        self.connected = False
        self.linger: int | None = None     # None: off; -1: forever; N: seconds
        self._first = True
        self._discard_reply = False
        self._down_handled = False
        self._first_timeout_s = first_command_timeout_s
        self._first_timer = None

    def start(self) -> None:
        super().start()
        self._first_timer = self.switch.spawn_later(self._first_timeout_s,
                                                    self._first_command_timeout)

    def _first_command_timeout(self) -> None:
        if self._first and not self.closing:   # "Socket Error!": goodbye and close
            self.finish()

    def notice_uuid(self) -> str | None:
        return self.call.uuid

    def handle(self, command: Command) -> None:
        if self._first:
            self._first = False
            self._first_timer.kill(block=False)
            # MES:2719-2723: the first command's reply is dropped; connect writes its own.
            self._discard_reply = not command.line.lower().startswith("connect")
        try:
            super().handle(command)
        finally:
            self._discard_reply = False

    def reply(self, text: str, extra: wire.Headers = ()) -> None:
        if self._discard_reply:
            self._discard_reply = False
            return
        super().reply(text, extra)

    def dispatch_session(self, command: Command):
        line, low = command.line, command.line.lower()
        channel = self.call.channel
        if low.startswith("resume"):
            channel.set_var("socket_resume", "true")
            return "+OK"
        if low.startswith("connect"):
            self.connected = True
            self.send(wire.serialize_plain(channel.channel_data().headers))
            self.call._on_connect()
            return None
        if low.startswith("getvar"):
            name = line.partition(" ")[2].strip()
            # MES:2048-2062: an empty value is rewritten to "-ERR command not found".
            return channel.variables.get(name) or "-ERR command not found"
        if low.startswith("myevents"):
            if self.myevents:
                return "-ERR aready enabled."
            self.events |= MYEVENTS
            self.myevents = self.events_on = True
            if "json" in low:
                self.fmt = "json"
            return "+OK Events Enabled"
        if low.startswith("divert_events"):
            value = line[13:].strip()
            if not value:
                return "-ERR missing value."
            return "+OK events diverted" if value.lower() == "on" else "+OK events not diverted"
        return NotImplemented

    def do_linger(self, line: str) -> str:
        if len(line) > 7 and line[6] == " ":
            digits = ""
            for char in line[7:].strip():
                if not (char.isdigit() or (char == "-" and not digits)):
                    break
                digits += char
            self.linger = int(digits) if digits not in ("", "-") else 0   # atoi
            return "+OK will linger %d seconds" % self.linger
        self.linger = -1   # ESL-FACTS 2.6: a bare linger is forever
        return "+OK will linger"

    def do_nolinger(self) -> str:
        self.linger = None
        return "+OK will not linger"

    def channel_down(self) -> None:
        """The listener saw the channel go down (MES:1466-1499)."""
        if self._down_handled or self.closing:
            return
        self._down_handled = True
        if self.linger is None:
            self.finish()
            return
        self.send(wire.linger_notice(self.call.uuid, self.call.channel.name, self.linger))
        if self.linger >= 0:
            self.switch.spawn_later(self.linger + LINGER_GRACE_S, self._linger_expired)

    def _linger_expired(self) -> None:
        if not self.closing:
            self.finish()

    def on_closed(self) -> None:
        self.switch.forget(self)
        self.call._on_listener_end()
