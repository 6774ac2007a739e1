"""The switch's own ESL listener: what a client that connects to FreeSWITCH gets
(ESL-FACTS 1.3: banner, auth, then the common commands; CAPTURES 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from testkit.fakes import wire
from testkit.fakes.listener import MYEVENTS, EslConnection
from testkit.fakes.wire import Command

if TYPE_CHECKING:
    from testkit.fakes.switch import FakeSwitch


class InboundConnection(EslConnection):
    """A client that connected to the switch's own listener (ESL-FACTS 1.3)."""

    def __init__(self, switch: "FakeSwitch", sock) -> None:
        super().__init__(switch, sock, switch.commands)
        self.authed = False

    def start(self) -> None:
        self.send(wire.AUTH_REQUEST)
        super().start()

    def dispatch_first(self, command: Command):
        if self.authed:
            return NotImplemented
        if command.line.lower().startswith("auth "):
            if command.line[5:].strip() == self.switch.password:
                self.authed = True
                return "+OK accepted"
            self.reply("-ERR invalid")
            self.finish()
            return None
        return "-ERR command not found"

    def dispatch_session(self, command: Command):
        low = command.line.lower()
        if not low.startswith("myevents "):
            return NotImplemented
        if self.myevents:
            return "-ERR aready enabled."
        target, _, fmt = command.line[9:].strip().partition(" ")
        if self.switch.find_call(target) is None and fmt:
            return "-ERR invalid uuid"
        self.session_uuid = target
        if fmt.lower() in ("plain", "json"):
            self.fmt = fmt.lower()
        self.events |= MYEVENTS
        self.myevents = self.events_on = True
        return "+OK Events Enabled"

    def on_closed(self) -> None:
        self.switch.forget(self)
