"""The `api` / `bgapi` commands the fake answers, with FreeSWITCH's exact output texts
(CAPTURES 4 and 6, ESL-FACTS 4; the -ERR/-USAGE texts are mod_commands.c's).

Accepted originate form (for synthetic calls), everything else is -USAGE:
    originate [{origination_uuid=..,origination_caller_id_number=..,
                origination_caller_id_name=..}]loopback/<ext>[/<context>] &playback(<wav>)
The WAV must be 8 kHz mono 16-bit; it becomes the caller's audio from answer on. The result
is `+OK <A-leg uuid>` once TOM answered, like the captured loopback originate. As on a real
FreeSWITCH, an originated channel hangs up (NORMAL_CLEARING) as soon as its application
returns: when the WAV has played out.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import gevent

from testkit.fakes.channel import TICK_S, cause_name, local_stamp
from testkit.fakes.media import read_wav_pcm, wav_info, split_file_prefix

if TYPE_CHECKING:
    from testkit.fakes.call import FakeCall
    from testkit.fakes.listener import EslConnection
    from testkit.fakes.switch import FakeSwitch

BROADCAST_SYNTAX = "<uuid> <path> [aleg|bleg|holdb|both]"
BREAK_SYNTAX = "<uuid> [all]"
DISPLACE_SYNTAX = "<uuid> [start|stop] <path> [<limit>] [mux]"
TRANSFER_SYNTAX = "<uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]"
KILL_SYNTAX = "<uuid> [cause]"
DTMF_SYNTAX = "<uuid> <dtmf_data>"
ORIGINATE_SYNTAX = ("<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] "
                    "[<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]")
ORIGINATE_TIMEOUT_S = 60.0
_ORIGINATE = re.compile(r"^(\{[^}]*\})?loopback/([^/\s]+)(?:/\S+)?\s+&playback\((.+)\)\s*$")


class Api:
    def __init__(self, switch: "FakeSwitch") -> None:
        self.switch = switch

    def run(self, name: str, arg: str, connection: "EslConnection | None" = None) -> str:
        handler = getattr(self, "cmd_" + name, None) if name.isidentifier() else None
        if handler is None:
            return "-ERR %s Command not found!\n" % name   # CAPTURES 4
        return handler(arg.strip())

    def _call(self, uuid: str) -> "FakeCall | None":
        return self.switch.find_call(uuid)

    def cmd_status(self, arg: str) -> str:
        """Captured shape (01-inbound-plain); counters are this fake's own."""
        up = time.time() - self.switch.started_at
        micro = int(up * 1_000_000)
        parts = [(0, "year"), (int(up // 86400), "day"), (int(up // 3600) % 24, "hour"),
                 (int(up // 60) % 60, "minute"), (int(up) % 60, "second"),
                 ((micro // 1000) % 1000, "millisecond"), (micro % 1000, "microsecond")]
        uptime = ", ".join("%d %s%s" % (n, unit, "" if n == 1 else "s") for n, unit in parts)
        live = len(self.switch.live_calls())
        peak = self.switch.peak_sessions
        return ("UP %s\nFreeSWITCH (Version 1.11.3-dev  64bit) is ready\n"
                "%d session(s) since startup\n%d session(s) - peak %d, last 5min %d \n"
                "0 session(s) per Sec out of max 30, peak %d, last 5min %d \n"
                "1000 session(s) max\nmin idle cpu 0.00/99.07\n"
                "Current Stack Size/Max 240K/8192K\n"
                % (uptime, self.switch.core.session_ids, live, peak, peak, peak, peak))

    def cmd_show(self, arg: str) -> str:
        words = arg.split()
        if len(words) != 3 or words[1:] != ["as", "json"] or words[0] not in ("channels", "calls"):
            return "-ERR the fake switch answers only 'show channels|calls as json'\n"
        rows = [self._row(call, words[0] == "calls") for call in self.switch.live_calls()]
        if not rows:
            return '{"row_count": 0}\n'   # CAPTURES 4: a space and a newline here only
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"),
                          ensure_ascii=False)

    @staticmethod
    def _row(call: "FakeCall", calls_view: bool) -> dict[str, str]:
        """A `channels` row as captured for leg B; `calls` uses the basic_calls view
        (switch_core_sqldb.c) with the b_* columns empty for an unbridged channel."""
        ch = call.channel
        created = ch.created_us
        head = {"uuid": ch.uuid, "direction": "inbound", "created": local_stamp(created),
                "created_epoch": str(created // 1_000_000), "name": ch.name,
                "state": ch.state, "cid_name": ch.cid_name, "cid_num": ch.number,
                "ip_addr": "", "dest": ch.destination}
        tail = {"presence_id": "", "presence_data": "", "accountcode": "",
                "callstate": ch.call_state, "callee_name": "Outbound Call",
                "callee_num": "default", "callee_direction": "", "call_uuid": ""}
        if calls_view:
            row = dict(head, **tail, hostname="vm", sent_callee_name="", sent_callee_num="")
            for key in ("uuid", "direction", "created", "created_epoch", "name", "state",
                        "cid_name", "cid_num", "ip_addr", "dest", "presence_id",
                        "presence_data", "accountcode", "callstate", "callee_name",
                        "callee_num", "callee_direction", "sent_callee_name", "sent_callee_num"):
                row["b_" + key] = ""
            row["call_created_epoch"] = ""
            return row
        row = dict(head, application=ch.variables.get("current_application", ""),
                   application_data=ch.variables.get("current_application_data", ""),
                   dialplan=ch.dialplan, context="default", read_codec="L16", read_rate="8000",
                   read_bit_rate="128000", write_codec="L16", write_rate="8000",
                   write_bit_rate="128000", secure="", hostname="vm")
        row.update(tail)
        row.update(sent_callee_name="", sent_callee_num="", initial_cid_name=ch.cid_name,
                   initial_cid_num=ch.number, initial_ip_addr="",
                   initial_dest=call.initial_destination, initial_dialplan="xml",
                   initial_context="default")
        return row

    def cmd_uuid_broadcast(self, arg: str) -> str:
        words = arg.split(" ")
        if len(words) < 2 or not words[0]:
            return "-USAGE: %s\n" % BROADCAST_SYNTAX
        call = self._call(words[0])
        if call is None:
            return "-ERR invalid uuid\n"
        leg = words[2].lower() if len(words) > 2 else "aleg"
        if leg == "bleg":
            call._log_error("uuid_broadcast bleg: the fake has no bridged partner")
            return "+OK Message sent\n"
        # ASY:5728-5751: a queued private event; the API returns at once.
        call.session.queue_message({"call-command": "execute", "execute-app-name": "playback",
                                    "execute-app-arg": words[1], "event-lock": "true",
                                    "lead-frames": "5"})
        return "+OK Message sent\n"

    def cmd_uuid_break(self, arg: str) -> str:
        words = arg.split()
        if not words:
            return "-USAGE: %s\n" % BREAK_SYNTAX
        call = self._call(words[0])
        if call is None:
            return "-ERR No such channel!\n"
        call.session.request_break(flush=len(words) > 1 and words[1] in ("all", "both"))
        return "+OK\n"

    def cmd_uuid_displace(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 3:
            return "-USAGE: %s\n" % DISPLACE_SYNTAX
        call = self._call(words[0])
        if call is None:
            return "-ERR Cannot locate session!\n"
        action = words[1].lower()
        if action == "start":
            if wav_info(split_file_prefix(words[2])[1]) is None:
                return "-ERR Cannot displace session!\n"
            call.displace_used = True
            call.session.displace_active = True
            return "+OK Success\n"
        if action == "stop":
            if not call.session.displace_active:
                return "-ERR Cannot stop displace session!\n"
            call.session.displace_active = False
            return "+OK Success\n"
        return "-USAGE: %s\n" % DISPLACE_SYNTAX

    def cmd_uuid_transfer(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2 or len(words) > 5:
            return "-USAGE: %s\n" % TRANSFER_SYNTAX
        call = self._call(words[0])
        if call is None:
            return "-ERR No such channel!\n"
        rest = [w for w in words[1:] if w.lower() not in ("-bleg", "-both")]
        if not rest:
            return "-USAGE: %s\n" % TRANSFER_SYNTAX
        dialplan = rest[1] if len(rest) > 1 else "XML"
        context = rest[2] if len(rest) > 2 else "default"
        ok = call.session.request_transfer(rest[0], dialplan, context)
        return "+OK\n" if ok else "-ERR\n"

    def cmd_uuid_kill(self, arg: str) -> str:
        if not arg:
            return "-USAGE: %s\n" % KILL_SYNTAX
        target, _, cause = arg.partition(" ")
        call = self._call(target) or self.switch.find_call_by_a_leg(target)
        if call is None:
            return "-ERR No such channel!\n"
        call.session.hangup(cause_name(cause))
        return "+OK\n"

    def cmd_uuid_send_dtmf(self, arg: str) -> str:
        target, _, digits = arg.partition(" ")
        digits = digits.split(" ")[0]
        if not target or not digits:
            return "-USAGE: %s\n" % DTMF_SYNTAX
        call = self._call(target)
        if call is not None:      # sent by B towards the caller: no event on B (CAPTURES 8)
            call.dtmf_to_caller.append(digits)
        else:
            call = self.switch.find_call_by_a_leg(target)
            if call is None:
                return "-ERR Cannot locate session!\n"
            call.send_dtmf(digits)  # sent by the caller: DTMF events on B
        return "+OK %s sent DTMF %s.\n" % (target, digits)

    def cmd_originate(self, arg: str) -> str:
        match = _ORIGINATE.match(arg)
        if not match:
            return "-USAGE: %s\n" % ORIGINATE_SYNTAX
        variables = dict(split_file_prefix((match.group(1) or "") + "x")[0])
        try:
            pcm = read_wav_pcm(match.group(3).strip())
        except (OSError, EOFError, ValueError) as exc:
            return "-ERR fake originate cannot use the WAV: %s\n" % exc
        call = self.switch.place_call(
            pcm, caller_id_number=variables.get("origination_caller_id_number", "0000000000"),
            caller_id_name=variables.get("origination_caller_id_name", ""),
            destination=match.group(2), a_uuid=variables.get("origination_uuid"))
        try:
            call.wait_for(lambda: call.answered or call.hung_up or call.ended,
                          ORIGINATE_TIMEOUT_S, "originate answer")
        except TimeoutError:
            call.session.hangup("NO_ANSWER")
            return "-ERR NO_ANSWER\n"
        if not call.answered:
            return "-ERR %s\n" % (call.hangup_cause or "NORMAL_CLEARING")
        self.switch.spawn(self._hang_up_after_playback, call, len(pcm) / 2 / 8000)
        gevent.sleep(TICK_S)   # the captured job result came one tick after the answer
        return "+OK %s\n" % call.a_uuid

    @staticmethod
    def _hang_up_after_playback(call: "FakeCall", seconds: float) -> None:
        gevent.sleep(max(0.0, seconds - call.audio_position_s))
        if not call.hung_up:
            call.session.hangup("NORMAL_CLEARING")
