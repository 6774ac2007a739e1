"""The controlled channel's data (caller profile, state, variables) and the events built
from it, header for header in the order the captures show (02-s1, 04-s3, 07-s6,
11-transfer). Values change; names and order do not."""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Callable

from testkit.fakes.wire import Event, Headers

TICK_S = 0.02  # the session timer: 20 ms L16 frames at 8 kHz (CAPTURES 6.1)

# Event-Calling-File / -Function / -Line-Number, as captured for each event.
CALLING = {
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", 2029),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", 1002),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", 1213),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", 2949),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", 2972),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", 3848),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", 3447),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", 2409),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c",
                                "switch_core_session_reporting_state", 943),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", 678),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", 1649),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", 2023),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", 1580),
}

# ESL-FACTS 5.2: only these carry variable_* headers (DTMF and CHANNEL_STATE do not).
VERBOSE = {"CHANNEL_DATA", "CHANNEL_CREATE", "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_ANSWER",
           "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
           "CHANNEL_HANGUP_COMPLETE", "PLAYBACK_START", "PLAYBACK_STOP"}

STATE_NUMBERS = {"CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_EXECUTE": 4,
                 "CS_HANGUP": 10, "CS_REPORTING": 11}

# switch_types.h; anything else maps to NORMAL_CLEARING like switch_channel_str2cause.
CAUSES = {"UNALLOCATED_NUMBER": 1, "NO_ROUTE_DESTINATION": 3, "NORMAL_CLEARING": 16,
          "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20,
          "CALL_REJECTED": 21, "NUMBER_CHANGED": 22, "DESTINATION_OUT_OF_ORDER": 27,
          "INVALID_NUMBER_FORMAT": 28, "NORMAL_UNSPECIFIED": 31,
          "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
          "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "SERVICE_UNAVAILABLE": 63,
          "INTERWORKING": 127, "ORIGINATOR_CANCEL": 487, "MANAGER_REQUEST": 703,
          "ALLOTTED_TIMEOUT": 802, "MEDIA_TIMEOUT": 804}


def cause_name(text: str | None) -> str:
    name = (text or "").strip().upper()
    if name.isdigit():
        by_code = {code: key for key, code in CAUSES.items()}
        return by_code.get(int(name), "NORMAL_CLEARING")
    return name if name in CAUSES else "NORMAL_CLEARING"


def q850(cause: str) -> int:
    code = CAUSES.get(cause, 16)
    return code if code <= 127 else 16


def tick_us(now: float | None = None) -> int:
    """Event-Date-Timestamp: events fired in the same 20 ms tick share it (CAPTURES 4)."""
    micro = int((time.time() if now is None else now) * 1_000_000)
    return micro - micro % 20_000


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_stamp(micro: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(micro // 1_000_000))


def gmt_stamp(micro: int) -> str:
    t = time.gmtime(micro // 1_000_000)
    return "%s, %02d %s %d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min,
        t.tm_sec)


class Core:
    """Switch-wide values of the standard event headers (ESL-FACTS 5.1)."""

    def __init__(self) -> None:
        self.core_uuid = str(uuidlib.uuid4())
        self.sequence = 440
        self.session_ids = 0
        self.started = time.time()

    def standard(self, name: str, calling: tuple[str, str, int] | None = None,
                 micro: int | None = None) -> Headers:
        micro = tick_us() if micro is None else micro
        self.sequence += 1
        file, function, line = calling or CALLING[name]
        return [("Event-Name", name), ("Core-UUID", self.core_uuid),
                ("FreeSWITCH-Hostname", "vm"), ("FreeSWITCH-Switchname", "vm"),
                ("FreeSWITCH-IPv4", "192.0.2.2"), ("FreeSWITCH-IPv6", "fd00::2"),
                ("Event-Date-Local", local_stamp(micro)), ("Event-Date-GMT", gmt_stamp(micro)),
                ("Event-Date-Timestamp", str(micro)), ("Event-Calling-File", file),
                ("Event-Calling-Function", function), ("Event-Calling-Line-Number", str(line)),
                ("Event-Sequence", str(self.sequence))]


class Channel:
    """Leg B of the captured loopback calls: the channel the `socket` app hands over."""

    def __init__(self, core: Core, number: str, name: str, destination: str,
                 socket_arg: str, a_uuid: str, uuid: str | None = None) -> None:
        core.session_ids += 1
        self.core = core
        self.uuid = uuid or str(uuidlib.uuid4())
        self.a_uuid = a_uuid
        self.number = number
        self.cid_name = name
        self.destination = destination
        self.socket_arg = socket_arg
        self.name = "loopback/%s-b" % destination
        self.state = "CS_INIT"
        self.call_state = "DOWN"
        self.state_number = 2   # CHANNEL_CREATE of leg B (01-inbound-plain): CS_INIT, DOWN, 2
        self.answer_state = "ringing"
        self.hangup_cause: str | None = None
        self.created_us = tick_us()
        self.answered_us = 0
        self.hangup_us = 0
        self.profile_index = 1
        self.profile_created_us = self.created_us
        self.dialplan = "xml"
        self.transfer_source: str | None = None
        self.rdnis: str | None = None
        self.digits = ""  # DTMF received, for variable_digits_dialed
        self.clock: Callable[[], int] = tick_us   # the session's tick clock once it runs
        self.variables: dict[str, str] = {}
        # CHANNEL_CREATE order (01-inbound-plain, leg B); later sets move a name to the end.
        for key, value in (("direction", "inbound"), ("uuid", self.uuid),
                           ("call_uuid", self.uuid), ("session_id", str(core.session_ids)),
                           ("channel_name", self.name), ("read_codec", "L16"),
                           ("read_rate", "8000"), ("write_codec", "L16"),
                           ("write_rate", "8000"), ("origination_uuid", a_uuid),
                           ("origination_caller_id_number", number),
                           ("other_loopback_leg_uuid", a_uuid), ("loopback_leg", "B")):
            self.set_var(key, value)

    def set_var(self, name: str, value: str | None) -> None:
        """Channel variables: setting one moves it to the end, an empty value deletes it
        (the variable order in 02-s1's CHANNEL_EXECUTE/..._COMPLETE events shows both)."""
        self.variables.pop(name, None)
        if value:
            self.variables[name] = value

    def set_state(self, state: str, call_state: str | None = None) -> None:
        self.state = state
        self.state_number = STATE_NUMBERS[state]
        if call_state:
            self.call_state = call_state

    def profile(self, prefix: str) -> Headers:
        """The caller profile (ESL-FACTS 5.1); Caller-ID-Name sits between Dialplan and
        Caller-ID-Number as on the captured A leg, and is absent when empty."""
        rows: Headers = [("Direction", "inbound"), ("Logical-Direction", "inbound"),
                         ("Dialplan", self.dialplan)]
        if self.cid_name:
            rows.append(("Caller-ID-Name", self.cid_name))
        rows += [("Caller-ID-Number", self.number), ("Orig-Caller-ID-Number", self.number),
                 ("Callee-ID-Name", "Outbound Call"), ("Callee-ID-Number", "default"),
                 ("ANI", self.number), ("Destination-Number", self.destination),
                 ("Unique-ID", self.uuid), ("Source", "mod_loopback")]
        if self.transfer_source:
            rows.append(("Transfer-Source", self.transfer_source))
        rows.append(("Context", "default"))
        if self.rdnis:
            rows.append(("RDNIS", self.rdnis))
        rows += [("Channel-Name", self.name), ("Profile-Index", str(self.profile_index)),
                 ("Profile-Created-Time", str(self.profile_created_us)),
                 ("Channel-Created-Time", str(self.created_us)),
                 ("Channel-Answered-Time", str(self.answered_us)),
                 ("Channel-Progress-Time", "0"), ("Channel-Progress-Media-Time", "0"),
                 ("Channel-Hangup-Time", str(self.hangup_us)),
                 ("Channel-Transfer-Time", "0"), ("Channel-Resurrect-Time", "0"),
                 ("Channel-Bridged-Time", "0"), ("Channel-Last-Hold", "0"),
                 ("Channel-Hold-Accum", "0"), ("Screen-Bit", "true"),
                 ("Privacy-Hide-Name", "false"), ("Privacy-Hide-Number", "false")]
        return [(prefix + "-" + key, value) for key, value in rows]

    def basic(self) -> Headers:
        rows: Headers = [("Channel-State", self.state), ("Channel-Call-State", self.call_state),
                         ("Channel-State-Number", str(self.state_number)),
                         ("Channel-Name", self.name), ("Unique-ID", self.uuid),
                         ("Call-Direction", "inbound"), ("Presence-Call-Direction", "inbound"),
                         ("Channel-HIT-Dialplan", "true"), ("Channel-Call-UUID", self.uuid),
                         ("Answer-State", self.answer_state)]
        if self.hangup_cause:
            rows.append(("Hangup-Cause", self.hangup_cause))
        rows += [("Channel-Read-Codec-Name", "L16"), ("Channel-Read-Codec-Rate", "8000"),
                 ("Channel-Read-Codec-Bit-Rate", "128000"), ("Channel-Write-Codec-Name", "L16"),
                 ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "128000")]
        return rows + self.profile("Caller")

    def event(self, name: str, tail: Headers = (), head: Headers = (),
              body: str | None = None) -> Event:
        headers = self.core.standard(name, micro=self.clock()) + list(head) + self.basic()
        if name in VERBOSE:
            headers += [("variable_" + key, value) for key, value in self.variables.items()]
        return Event(name, headers + list(tail), body)

    def channel_data(self, control_full: bool = True) -> Event:
        """The reply to `connect` (ESL-FACTS 2.3, 02-s1): profile as Channel-*, basic data,
        variables, then the reply headers last; no Content-Length."""
        headers = (self.core.standard("CHANNEL_DATA", micro=self.clock())
                   + self.profile("Channel")
                   + self.basic() + [("variable_" + k, v) for k, v in self.variables.items()]
                   + [("Content-Type", "command/reply"), ("Reply-Text", "+OK\n"),
                      ("Socket-Mode", "async"),
                      ("Control", "full" if control_full else "single-channel")])
        return Event("CHANNEL_DATA", headers)

    def caller_id_variable(self) -> str:
        # variable_caller_id: the number alone (leg B) or '"Name" <number>' (leg A, 01-json).
        return '"%s" <%s>' % (self.cid_name, self.number) if self.cid_name else self.number

    def set_cdr_variables(self, last_app: str | None, last_arg: str | None) -> None:
        """The CDR variables of CHANNEL_HANGUP_COMPLETE, in 07-s6's order and arithmetic
        (msec values are differences of truncated milliseconds, as 04-s3 shows)."""
        start, answer, end = self.created_us, self.answered_us, self.hangup_us
        ms = lambda micro: micro // 1000  # noqa: E731
        sec = lambda micro: micro // 1_000_000  # noqa: E731
        bill_us = end - answer if answer else 0
        answer_us = answer - start if answer else 0
        pairs = [("hangup_cause", self.hangup_cause), ("hangup_cause_q850",
                                                       str(q850(self.hangup_cause or ""))),
                 ("digits_dialed", self.digits or "none"),
                 ("start_stamp", local_stamp(start)), ("profile_start_stamp", local_stamp(start)),
                 ("answer_stamp", local_stamp(answer) if answer else None),
                 ("end_stamp", local_stamp(end)), ("start_epoch", str(sec(start))),
                 ("start_uepoch", str(start)), ("profile_start_epoch", str(sec(start))),
                 ("profile_start_uepoch", str(start)),
                 ("answer_epoch", str(sec(answer))), ("answer_uepoch", str(answer))]
        pairs += [(key, "0") for key in (
            "bridge_epoch", "bridge_uepoch", "last_hold_epoch", "last_hold_uepoch",
            "hold_accum_seconds", "hold_accum_usec", "hold_accum_ms", "resurrect_epoch",
            "resurrect_uepoch", "progress_epoch", "progress_uepoch", "progress_media_epoch",
            "progress_media_uepoch")]
        bill_ms = ms(end) - ms(answer) if answer else 0
        answer_ms = ms(answer) - ms(start) if answer else 0
        pairs += [("end_epoch", str(sec(end))), ("end_uepoch", str(end)),
                  ("last_app", last_app), ("last_arg", last_arg),
                  ("caller_id", self.caller_id_variable()),
                  ("duration", str(sec(end) - sec(start))),
                  ("billsec", str(sec(end) - sec(answer) if answer else 0)),
                  ("progresssec", "0"),
                  ("answersec", str(sec(answer) - sec(start) if answer else 0)),
                  ("waitsec", "0"), ("progress_mediasec", "0"),
                  ("flow_billsec", str(sec(end) - sec(start))),
                  ("mduration", str(ms(end) - ms(start))), ("billmsec", str(bill_ms)),
                  ("progressmsec", "0"), ("answermsec", str(answer_ms)), ("waitmsec", "0"),
                  ("progress_mediamsec", "0"), ("flow_billmsec", str(ms(end) - ms(start))),
                  ("uduration", str(end - start)), ("billusec", str(bill_us)),
                  ("progressusec", "0"), ("answerusec", str(answer_us)), ("waitusec", "0"),
                  ("progress_mediausec", "0"), ("flow_billusec", str(end - start)),
                  ("is_loopback", "1")]
        for key, value in pairs:
            self.set_var(key, value)
