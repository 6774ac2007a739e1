"""The dialplan apps the fake session runs: answer, park, playback, hangup, transfer.

A mixin of Session (testkit/fakes/session.py), which provides fire(), the tick clock, the
private-event queue and the unicast teardown these apps use.
"""

from __future__ import annotations

import math

from testkit.fakes.channel import TICK_S, cause_name
from testkit.fakes.media import split_file_prefix, wav_info

# Samples per file read: 02-s1's break shows playback_samples 32768 with 23200 played, i.e.
# whole blocks plus one read ahead (inferred from that one run).
_READ_AHEAD = 8192


class Apps:
    def _app_answer(self, arg: str | None) -> None:
        ch = self.channel
        if ch.answered_us:
            return
        ch.answered_us = ch.clock()
        ch.answer_state = "answered"
        self.fire("CHANNEL_ANSWER")      # still RINGING in 02-s1's CHANNEL_ANSWER
        ch.call_state = "ACTIVE"
        ch.set_var("endpoint_disposition", "ANSWER")
        self.answer_mono = self._tick
        self.call._on_answer()

    def _app_park(self, arg: str | None) -> None:
        # CAPTURES 5: the socket app already parked the channel.
        self.call._log_error(
            "switch_ivr.c:975 Cannot park channels that are under control already.")

    def _app_hangup(self, arg: str | None) -> None:
        self.hangup(cause_name(arg))

    def _app_transfer(self, arg: str | None) -> None:
        parts = (arg or "").split()
        if parts:
            self.request_transfer(parts[0], *(parts[1:3]))

    def _app_playback(self, arg: str | None) -> None:
        tags, path = split_file_prefix(arg or "")
        record = {"path": path, "tags": tags, "status": None}
        self.call.played.append(record)
        if self.down:   # PS:1294: no pre-answer on a hung-up channel, so no PLAYBACK_*
            record["status"] = "error"
            self.channel.set_var("current_application_response", "PLAYBACK ERROR")
            self.call._notify()
            return
        info = wav_info(path)
        if info is None:   # ESL-FACTS 4.3: no PLAYBACK_*, FILE NOT FOUND
            record["status"] = "not found"
            self.channel.set_var("current_application_response", "FILE NOT FOUND")
            self._teardown_unicast(at_park_end=False)   # PS:1495 resets the session too
            self.call._notify()
            return
        frames, rate = info
        extra = list(tags.items())
        self.fire("PLAYBACK_START", [("Playback-File-Path", arg)] + extra)
        status, played = self._play_ticks(math.ceil(frames / rate / TICK_S))
        if played * TICK_S * rate >= frames:
            offset = samples = frames
        else:
            offset = int(played * TICK_S * rate)
            samples = min(frames, (math.ceil(offset / _READ_AHEAD) + 1) * _READ_AHEAD)
        ch = self.channel
        ch.set_var("playback_last_offset_pos", str(offset))
        ch.set_var("playback_seconds", str(samples // rate))
        ch.set_var("playback_ms", str(samples // (rate // 1000)))
        ch.set_var("playback_samples", str(samples))
        self.fire("PLAYBACK_STOP", [("Playback-File-Path", arg), ("Playback-Status", status)]
                  + extra)
        record["status"] = status
        self._teardown_unicast(at_park_end=False)   # switch_core_session_reset (CAPTURES 6.3)
        ch.set_var("current_application_response",
                   "PLAYBACK ERROR" if self.down else "FILE PLAYED")
        self.call._notify()

    def _play_ticks(self, total: int) -> tuple[str, int]:
        played = 0
        while played < total:
            self._sleep_tick()
            if self.down:
                return "done", played
            if self.break_flag:
                return "break", played
            self._dtmf_tick()
            self._process_queue()   # runs nested unless this playback holds an event-lock
            played += 1
        return "done", played
