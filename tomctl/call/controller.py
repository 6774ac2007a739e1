"""One phone call, owned by one greenlet: set up → greet → turn loop → ending → clean up.

Only this greenlet sends ESL commands for the call (greenswitch matches replies by order).
Everything else reaches it through its inbox: caller audio frames from the UDP socket,
FreeSWITCH events, the conversation's events and a lost connection. The greeting streams
over the unicast fork like every answer, so the caller can interrupt it; FreeSWITCH plays a
prompt itself (``uuid_broadcast``) only when the conversation is over, because any playback
ends the fork for good (CAPTURES.md 6.3).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import gevent
import gevent.queue

from tomctl.audio.sink import PacedSink
from tomctl.call.intents import says_goodbye, spoken_rating, wants_human
from tomctl.call.registry import CallRecord, CallRegistry
from tomctl.config import Recording, RecordingSettings, TelephonySettings
from tomctl.conversation.conversation import Conversation
from tomctl.errors import CallGone, CommandFailed, TelephonyError
from tomctl.learning.reward import Signals
from tomctl.learning.variants import Variant
from tomctl.logs import event, personal
from tomctl.privacy import CallerInfo, NumberHasher
from tomctl.recording.consent import consent_answer, consent_from_key
from tomctl.recording.recorder import Recording as CallRecording, RecordingWriter
from tomctl.store.calls import CallStore
from tomctl.telephony import wire
from tomctl.telephony.esl import OutboundConnection
from tomctl.telephony.media import PortPool, PortsExhausted, UnicastMedia
from tomctl.telephony.prompts import PromptSpool

log = logging.getLogger(__name__)

TICK_S = 0.1
IDLE_READ_S = 0.1
KEYPAD_PAUSE_S = 3.0            # digits typed without '#' count as one entry after this pause
TRANSFER_DIGIT = "0"
FAILED_TURNS_BEFORE_HANDOVER = 2
PROMPT_MARGIN_S = 5.0           # beyond a prompt's length, before TOM stops waiting for it
AFTER_REPLY_TIMEOUT_S = 10.0    # the longest TOM lets its last sentence play before ending
SUPPORTED_RATES = (8000, 16000)


@dataclasses.dataclass(frozen=True)
class CallServices:
    """What every call shares; built once by the service."""

    engine: Any
    settings: TelephonySettings
    ports: PortPool
    spool: PromptSpool
    registry: CallRegistry
    hasher: NumberHasher
    store: CallStore
    recording: RecordingSettings
    recorder: RecordingWriter | None      # None while TOM_RECORDING=off
    tools: Any = None                     # the ToolHub, None when TOM has no tool
    learner: Any = None                   # the Learner: a variant per call, its reward
    learning: Any = None                  # LearningSettings (TOM_FEEDBACK)


class Ending(Exception):
    """Leaves the turn loop: the conversation is over and ``kind`` says how it ends."""

    def __init__(self, kind: str, reason: str, after_reply: bool = False) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason   # kind: goodbye or transfer
        self.after_reply = after_reply          # let TOM finish its sentence first


class CallController:
    def __init__(self, connection: OutboundConnection, services: CallServices) -> None:
        self._conn = connection
        self._services = services
        self._settings = services.settings
        self._metrics = services.engine.metrics
        self._inbox: gevent.queue.Queue = gevent.queue.Queue()
        self._uuid = ""
        self._record: CallRecord | None = None
        self._media: UnicastMedia | None = None
        self._ports: tuple[int, int] | None = None
        self._sink: PacedSink | None = None
        self._conversation: Conversation | None = None
        self._started = time.monotonic()
        self._busy_at = self._started        # last moment someone was talking or thinking
        self._reprompted = False
        self._failed_turns = 0
        self._digits = ""
        self._digit_at = 0.0
        self._answered_turns = 0
        self._hangup_complete = False
        self._turn: dict[str, Any] = {}     # the turn in progress, for its record
        self._consent_asked = False         # the consent question waits for its answer
        self._quiet_since: float | None = None   # … and the line has been quiet since
        self._recording: CallRecording | None = None
        self._variant: Variant | None = None
        self._signals: dict[str, Any] = {"barge_ins": 0, "answers": 0, "fallback_turns": 0,
                                         "reprompts": 0, "asked_for_person": False}

    # -- the call's greenlet ----------------------------------------------------------------

    def run(self) -> None:
        outcome = "failed"
        try:
            self._set_up()
            try:
                self._converse()
            except Ending as ending:
                event(log, "call_ending", call=self._uuid, how=ending.kind, reason=ending.reason)
                outcome = self._end(ending)
        except CallGone:
            outcome = "answered" if self._answered_turns else "abandoned"
        except (TelephonyError, PortsExhausted, OSError, ValueError) as exc:
            # Closing the socket without a hangup hands the call to the dialplan's fallback.
            event(log, "call_failed", level=logging.ERROR, call=self._uuid,
                  error=type(exc).__name__, detail=str(exc)[:200])
        except Exception:  # the greenlet boundary: a bug must not leave the caller hanging
            event(log, "call_crashed", level=logging.ERROR, exc_info=True, call=self._uuid)
        finally:
            self._clean_up(outcome)

    def _set_up(self) -> None:
        conn, timeout = self._conn, self._settings.command_timeout_s
        self._conn.on_events(lambda ev: self._inbox.put(("esl", ev)))
        self._conn.on_lost(lambda reason: self._inbox.put(("lost", reason)))
        data = conn.connect() or conn.session_data
        self._uuid = wire.check_uuid(data.get("Unique-ID", ""))
        caller = CallerInfo(self._services.hasher.hash(data.get("Caller-Caller-ID-Number", "")))
        self._record = CallRecord(self._uuid, caller.number_hash, time.time())
        peer = data.get("variable_other_loopback_leg_uuid", "")
        self._record.peer_uuid = wire.check_uuid(peer) if peer else ""
        self._services.registry.add(self._record)
        self._services.store.call_started(self._uuid, caller.number_hash, self._record.started_at)
        self._metrics.active_calls.inc()
        event(log, "call_started", call=self._uuid, caller=caller.number_hash)
        conn.command_ok(wire.command("myevents"), timeout)
        # myevents never carries PLAYBACK_* (captured); they tell when a prompt has ended.
        conn.command_ok(wire.command("event plain PLAYBACK_START PLAYBACK_STOP"), timeout)
        conn.command_ok(wire.command(f"linger {self._settings.linger_s}"), timeout)
        answered = self._execute("answer")
        self._services.store.call_answered(self._uuid, time.time())
        rate = int(answered.get("Channel-Read-Codec-Rate") or
                   data.get("Channel-Read-Codec-Rate") or 8000)
        if rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported codec rate {rate}")
        self._start_media(rate)
        conn.command_ok(wire.unicast(self._settings.fs_media_host, self._ports[0],
                                     self._settings.media_host, self._ports[1]), timeout)
        self._conversation.say("greeting")
        mode = self._services.recording.mode
        if mode is Recording.ALWAYS:
            self._start_recording("not_asked")
        elif mode is Recording.CONSENT:
            self._ask_consent()

    # -- consent and recording --------------------------------------------------------------

    def _ask_consent(self) -> None:
        """After the greeting, streamed and interruptible like any answer; only a clear yes
        (keypad 1, or a spoken yes) records, and no answer in time is a no."""
        self._conversation.say("consent_question")
        self._conversation.expect_answer()
        self._consent_asked = True
        event(log, "consent_asked", call=self._uuid)

    def _quiet_for(self, now: float, seconds: float) -> bool:
        """No answer to TOM's question: the line quiet for ``seconds`` since it ended
        (counted from when it has been heard, however late the audio ran)."""
        if not self._conversation.idle:
            self._quiet_since = None
            return False
        if self._quiet_since is None:
            self._quiet_since = now
        return now - self._quiet_since >= seconds

    def _consent_answered(self, given: bool, how: str) -> None:
        self._consent_asked = False
        self._conversation.expect_answer(False)
        self._conversation.interrupt()            # a key pressed during the question ends it
        answer = "given" if given else "refused"
        self._metrics.consent.labels(answer=answer if how != "silence" else "no_answer").inc()
        event(log, "consent_answered", call=self._uuid, answer=answer, how=how)
        self._services.store.call_consent(self._uuid, answer)
        if how != "other":
            self._conversation.say("consent_given" if given else "consent_refused")
        if given:
            self._start_recording("given")

    def _start_recording(self, consent: str) -> None:
        if consent == "not_asked":
            self._services.store.call_consent(self._uuid, consent)
        self._recording = self._services.recorder.begin(self._uuid, self._sink.rate, consent)
        event(log, "recording_started", call=self._uuid, consent=consent)

    def _send_audio(self, frame: bytes) -> None:
        """TOM's voice to the caller, and into the recording."""
        self._media.send(frame)
        if self._recording is not None:
            self._recording.tom(frame)

    def _start_media(self, rate: int) -> None:
        services = self._services
        for _ in range(3):            # a port taken by something else: try the next pair
            self._ports = services.ports.take()
            media = UnicastMedia(self._settings.media_host, self._ports[1],
                                 self._settings.fs_media_host, self._ports[0], rate,
                                 lambda frame: self._inbox.put(("audio", frame)),
                                 self._patience)
            try:
                media.start()
                break
            except OSError:
                services.ports.release(self._ports)
                self._ports = None
        else:
            raise PortsExhausted("no free UDP port pair for the call's audio")
        self._media = media
        self._sink = PacedSink(self._send_audio, rate, self._metrics)
        self._sink.start()
        if services.learner is not None:
            self._variant, shares = services.learner.choose()
            services.store.call_variant(self._uuid, self._variant.id, shares)
            event(log, "variant_chosen", call=self._uuid, variant=self._variant.id,
                  share=round(shares[self._variant.id], 3))
        self._conversation = Conversation(services.engine, self._sink, rate,
                                          self._on_conversation_event, self._uuid,
                                          services.tools, self._variant)
        self._conversation.start()

    def _patience(self) -> float:
        """How long the caller's frames may wait in the socket: while the conversation is
        idle they are read in bursts (waking for every 20 ms frame was most of a listening
        call's cost); once the caller speaks, or TOM does, one by one again."""
        conversation = self._conversation
        return IDLE_READ_S if conversation is not None and conversation.idle else 0.0

    def _on_conversation_event(self, kind: str, **data: Any) -> None:
        self._inbox.put(("conversation", kind, data))

    # -- turn loop --------------------------------------------------------------------------

    def _converse(self) -> None:
        conversation, record = self._conversation, self._record
        while True:
            try:
                item = self._inbox.get(timeout=TICK_S)
            except gevent.queue.Empty:
                item = None
            if item is not None:
                if item[0] == "audio":
                    conversation.feed(item[1])
                    if self._recording is not None:
                        self._recording.caller(item[1])
                elif item[0] == "esl":
                    self._on_esl_event(item[1])
                elif item[0] == "conversation":
                    self._on_turn_event(item[1], item[2])
                else:
                    self._raise_lost(item[1])
            record.state = conversation.state
            self._check_clocks(time.monotonic())

    def _on_esl_event(self, ev: wire.Event) -> None:
        if ev.name == "CHANNEL_HANGUP":
            self._record.hangup_cause = ev.get("Hangup-Cause")
            self._signals["hung_up_on_tom"] = self._conversation is not None and \
                self._conversation.state == "speaking"
            raise CallGone("caller hung up")
        if ev.name == "DISCONNECT" and ev.get("Content-Disposition") != "linger":
            raise CallGone("FreeSWITCH closed the call's socket")
        if ev.name == "DTMF":
            self._on_digit(ev.get("DTMF-Digit"))

    def _on_digit(self, digit: str) -> None:
        event(log, "dtmf", call=self._uuid, digit=personal(digit))
        if digit == TRANSFER_DIGIT and not self._digits:
            self._signals["asked_for_person"] = True
            raise Ending("transfer", "caller pressed 0")
        if self._consent_asked:
            self._consent_answered(consent_from_key(digit), "keypad")
            return
        if digit == "#":
            self._submit_digits()
        elif len(digit) == 1 and digit in "0123456789*ABCD":
            self._digits += digit
            self._digit_at = time.monotonic()

    def _submit_digits(self) -> None:
        if self._digits:
            self._conversation.hear_text(f"(typed on the keypad) {self._digits}")
            self._digits = ""

    def _on_turn_event(self, kind: str, data: dict) -> None:
        if kind in ("speech_started", "transcript"):
            self._reprompted = False
        if kind == "answer" and self._consent_asked:
            answer = consent_answer(data["text"], self._services.engine.settings.persona.language)
            self._consent_answered(answer == "yes", "speech" if answer != "other" else "other")
            if answer == "other":           # they asked their question instead: answer it
                self._conversation.hear_text(data["text"])
            return
        if kind == "turn_ended" and data["outcome"] == "question_answered":
            return          # the consent answer: not a turn of the conversation
        if kind == "transcript":
            self._record.turns += 1
            self._turn = {"transcript": data["text"]}
            if wants_human(data["text"], self._services.engine.settings.persona.language):
                self._signals["asked_for_person"] = True
                raise Ending("transfer", "caller asked for a person")
            if says_goodbye(data["text"], self._services.engine.settings.persona.language):
                raise Ending("goodbye", "caller said goodbye")
        elif kind == "barge_in":
            self._signals["barge_ins"] += 1
        elif kind == "reply_done":
            self._turn.update(data)
            self._record.last_e2e_ms = data["latencies"].get("e2e_ms", 0.0)
        elif kind == "turn_ended":
            self._services.store.turn(
                self._uuid, self._record.turns, data["outcome"], self._turn.get("latencies", {}),
                self._turn.get("interrupted", False), self._turn.get("transcript", ""),
                self._turn.get("text", ""))
            self._turn = {}
            if data["outcome"] == "tool_failed":
                # The caller has been told TOM cannot look it up: a colleague can.
                raise Ending("transfer", "a tool failed", after_reply=True)
            if data["outcome"] == "fallback":
                self._signals["fallback_turns"] += 1
                self._failed_turns += 1
                if self._failed_turns >= FAILED_TURNS_BEFORE_HANDOVER:
                    raise Ending("transfer", "the engine cannot answer")
            elif data["outcome"] in ("answered", "interrupted"):
                self._signals["answers"] += 1
                self._failed_turns = 0
                self._answered_turns += 1

    def _check_clocks(self, now: float) -> None:
        if now - self._started >= self._settings.max_call_s:
            raise Ending("goodbye", "maximum call length")
        if self._consent_asked and self._quiet_for(now,
                                                   self._services.recording.consent_timeout_s):
            self._consent_answered(False, "silence")
        if self._digits and now - self._digit_at >= KEYPAD_PAUSE_S:
            self._submit_digits()
        if not self._conversation.idle or self._digits:
            self._busy_at = now
        elif now - self._busy_at >= self._settings.silence_timeout_s:
            if self._reprompted:
                raise Ending("goodbye", "caller silent")
            self._reprompted = True
            self._signals["reprompts"] += 1
            self._busy_at = now
            self._conversation.say("reprompt")

    # -- endings ----------------------------------------------------------------------------

    def _end(self, ending: Ending) -> str:
        self._record.state = "ending"
        if ending.after_reply and self._sink is not None:
            self._sink.wait_idle(AFTER_REPLY_TIMEOUT_S)
        learning = self._services.learning
        if ending.kind == "goodbye" and learning is not None and learning.feedback \
                and ending.reason != "caller silent":       # a silent caller rates nothing
            self._ask_rating()
        self._stop_talking()
        if ending.kind == "transfer":
            self._play("handover")
            self._conn.api(wire.api("uuid_transfer", self._uuid,
                                    wire.check_token(self._settings.fallback_extension), "XML",
                                    wire.check_token(self._settings.transfer_context)),
                           self._settings.command_timeout_s)
            return "transferred"
        self._play("goodbye")
        self._conn.command_ok(wire.hangup("NORMAL_CLEARING"), self._settings.command_timeout_s)
        self._wait_for(lambda ev: ev.name == "CHANNEL_HANGUP_COMPLETE",
                       self._settings.command_timeout_s, hangup_ok=True)
        return "answered"

    def _ask_rating(self) -> None:
        """TOM_FEEDBACK: before the goodbye, a rating from 1 to 5 on the keypad, streamed like
        every answer (a playback would end the audio fork for good); no key within
        TOM_FEEDBACK_TIMEOUT_S of the question having been heard is no rating."""
        conversation = self._conversation
        conversation.hush()
        conversation.say("rating_question")
        conversation.expect_answer()       # words are not a question for the LLM now
        event(log, "rating_asked", call=self._uuid)
        timeout_s = self._services.learning.feedback_timeout_s
        self._quiet_since = None
        while True:
            if self._quiet_for(time.monotonic(), timeout_s):
                self._metrics.feedback.labels(kind="none").inc()
                event(log, "rating_answered", call=self._uuid, rating=None)
                return
            try:
                item = self._inbox.get(timeout=TICK_S)
            except gevent.queue.Empty:
                continue
            rating = None
            if item[0] == "audio":
                conversation.feed(item[1])
            elif item[0] == "esl":
                ev = item[1]
                if ev.name == "CHANNEL_HANGUP":
                    self._record.hangup_cause = ev.get("Hangup-Cause")
                    raise CallGone("caller hung up")
                digit = ev.get("DTMF-Digit") if ev.name == "DTMF" else ""
                rating = int(digit) if digit in ("1", "2", "3", "4", "5") else None
            elif item[0] == "conversation" and item[1] == "answer":
                rating = spoken_rating(item[2]["text"],
                                       self._services.engine.settings.persona.language)
            elif item[0] == "lost":
                self._raise_lost(item[1])
            if rating is not None:
                self._signals["rating"] = rating
                self._services.store.feedback(self._uuid, "rating", rating)
                self._metrics.feedback.labels(kind="rating").inc()
                event(log, "rating_answered", call=self._uuid, rating=rating)
                conversation.expect_answer(False)
                return

    def _stop_talking(self) -> None:
        if self._conversation is not None:
            self._conversation.close()
        if self._sink is not None:
            self._sink.clear()

    def _play(self, name: str) -> None:
        """Play an ending prompt through FreeSWITCH and wait until it has finished."""
        prompt_id, arg, seconds = self._services.spool.broadcast_arg(name)
        self._conn.api(wire.api("uuid_broadcast", self._uuid, arg, "aleg"),
                       self._settings.command_timeout_s)
        ev = self._wait_for(
            lambda ev: (ev.name == "PLAYBACK_STOP" and ev.get("tom_prompt_id") == prompt_id)
            or (ev.name == "CHANNEL_EXECUTE_COMPLETE" and ev.get("Application") == "playback"
                and ev.get("Application-Response") == "FILE NOT FOUND"),
            seconds + PROMPT_MARGIN_S)
        if ev is None or ev.name != "PLAYBACK_STOP":
            event(log, "prompt_not_played", level=logging.WARNING, call=self._uuid,
                  prompt=name)

    def _execute(self, app: str, arg: str = "") -> wire.Event:
        """Run a dialplan app and wait for its completion, matched by Application-UUID."""
        app_uuid = wire.new_uuid()
        self._conn.command_ok(wire.execute(app, arg, app_uuid), self._settings.command_timeout_s)
        ev = self._wait_for(lambda ev: ev.name == "CHANNEL_EXECUTE_COMPLETE"
                            and ev.get("Application-UUID") == app_uuid,
                            self._settings.command_timeout_s)
        if ev is None:
            raise CommandFailed(f"{app} did not complete")
        return ev

    def _wait_for(self, wanted, timeout_s: float, hangup_ok: bool = False) -> wire.Event | None:
        """The first inbox event matching ``wanted``; caller audio meanwhile is dropped (no
        conversation listens any more). A hangup raises CallGone unless it is expected."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._inbox.get(timeout=remaining)
            except gevent.queue.Empty:
                break
            if item[0] == "lost":
                self._raise_lost(item[1])
            if item[0] != "esl":
                continue
            ev = item[1]
            self._hangup_complete |= ev.name == "CHANNEL_HANGUP_COMPLETE"
            if wanted(ev):
                return ev
            if ev.name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
                self._record.hangup_cause = ev.get("Hangup-Cause")
                if not hangup_ok:
                    raise CallGone("caller hung up")
        return None

    def _raise_lost(self, reason: str) -> None:
        # Garbage from FreeSWITCH's side is a failure (the call goes to the fallback); a
        # closed socket is the caller or FreeSWITCH going away.
        raise self._conn.protocol_error or CallGone(reason)

    # -- clean-up ---------------------------------------------------------------------------

    def _clean_up(self, outcome: str) -> None:
        self._stop_talking()
        if self._recording is not None:
            self._recording.finish()
        if self._sink is not None:
            self._sink.stop()
        if self._media is not None:
            self._media.close()
        if self._ports is not None:
            self._services.ports.release(self._ports)
        if outcome == "failed":
            self._conn.close()        # no exit: FreeSWITCH goes on with the dialplan fallback
        else:
            if (outcome != "transferred" and not self._hangup_complete
                    and self._record is not None and not self._conn.closed.is_set()):
                # The channel's last events come while FreeSWITCH lingers; then say exit.
                try:
                    self._wait_for(lambda ev: ev.name == "CHANNEL_HANGUP_COMPLETE",
                                   self._settings.command_timeout_s, hangup_ok=True)
                except CallGone:
                    pass
            self._conn.exit(self._settings.command_timeout_s)
        if self._record is not None:
            self._metrics.active_calls.dec()
            self._services.registry.finish(self._record, outcome)
            self._services.store.call_ended(self._uuid, self._record.ended_at, outcome,
                                            self._record.hangup_cause, self._record.turns)
            duration = time.monotonic() - self._started
            self._metrics.record_call(outcome, duration)
            if self._variant is not None and outcome != "failed":
                score = self._services.learner.finished(self._uuid, self._variant.id, Signals(
                    duration_s=duration, transferred=outcome == "transferred",
                    **self._signals))
                event(log, "call_scored", call=self._uuid, variant=self._variant.id,
                      reward=score)
            event(log, "call_ended", call=self._uuid, outcome=outcome,
                  duration_s=round(duration, 1), turns=self._record.turns,
                  hangup_cause=self._record.hangup_cause)
