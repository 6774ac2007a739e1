"""One conversation: listens to a caller's audio, takes turns, answers, can be interrupted.

Two greenlets touch a conversation, both on the hub: its owner calls :meth:`feed` with each
incoming frame (VAD, end-of-turn and barge-in decisions happen inline, so an interruption
reacts within one audio chunk), and the conversation's own turn greenlet answers one
utterance after another (STT → LLM → TTS, all in worker threads). They meet only through
the utterance queue and the current :class:`Reply`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

import gevent
import gevent.event
import gevent.queue
import numpy as np

from tomctl.audio.energy import MIN_LOUD_RMS, EnergyOnset, Sound
from tomctl.audio.frames import FRAME_MS, StreamResampler, check_rate, pcm_to_float
from tomctl.audio.sink import AudioSink
from tomctl.audio.turn_detector import (NoiseDiscarded, SpeechStarted, SpeechState,
                                        TurnDetector, UtteranceEnded)
from tomctl.audio.vad import CHUNK_MS
from tomctl.conversation.end_of_turn import (Evidence, Policy, Step, next_step, said_all,
                                              unfinished)
from tomctl.conversation.reply import Reply
from tomctl.conversation.turn_taking import (Action, ReplyPhase, decide, is_backchannel,
                                            went_on)
from tomctl.errors import PipelineError
from tomctl.learning.variants import DEFAULT as DEFAULT_VARIANTS, Variant, phrase_name
from tomctl.logs import event, personal
from tomctl.speech.offload import HubMailbox, StopFlag
from tomctl.speech.persona import honest
from tomctl.speech.scheduler import QUEUE_TIMEOUT_S
from tomctl.speech.scheduling import Turn
from tomctl.speech.whisper import Transcript
from tomctl.tools import follow_up

log = logging.getLogger(__name__)

# Between two events of a completion once it computes; its wait in the queue is not counted.
LLM_STEP_TIMEOUT_S = 15.0
# On the first end-of-turn question TOM also answers speculatively: Whisper, the LLM and the
# first sentence's synthesis run while the caller's silence is judged, and the audio is
# released the moment the turn ends. If the caller speaks again, it is thrown away.
# A speculative turn is always decided within the end-of-turn silence while audio flows;
# this only bounds the wait if the caller's audio stops arriving altogether.
VERDICT_TIMEOUT_S = 5.0
# TOM pauses for the caller on a loud frame or a chunk that scores this share of the VAD
# threshold, and carries on once the line has been quiet for RESUME_AFTER_MS.
HOLD_THRESHOLD_SHARE = 0.6
RESUME_AFTER_MS = 96
# Whisper makes words of a hum on a noisy line ("Can", "I hope") with little confidence:
# words said over TOM interrupt it only when Whisper is at least this sure of them.
SURE_WORDS_LOGPROB = -1.0
# A caller who spoke this long said something, even if Whisper believes none of it: TOM asks
# them to say it again rather than leave them waiting in silence.
SAID_SOMETHING_MS = 1000
EventCallback = Callable[..., None]
BASE_VARIANT = DEFAULT_VARIANTS[0]


@dataclasses.dataclass(frozen=True)
class Utterance:
    audio: np.ndarray
    turn: Turn                # when the caller stopped speaking, for the scheduler
    transcription: Any = None  # a speculative STT job over the same speech, if one ran
    text: str = ""            # typed input (keypad digits): no speech to transcribe
    provisional: "Provisional | None" = None  # set for a turn answered before its end
    speech_ms: int = 0        # voiced audio in it, as the VAD heard it (0: not known)

    @property
    def speech_end_at(self) -> float:
        return self.turn.speech_end_at


@dataclasses.dataclass
class WaitingWords:
    """Words that interrupted TOM, the caller quiet since. Answered alone as soon as the
    end-of-turn rules say they were all (Smart Turn asked about their audio, the words
    agreeing), after TOM_TURN_MAX_SILENCE_MS at the latest; until then they wait in the
    conversation's unanswered audio for the caller to go on."""
    transcription: Any            # the STT job that heard them; None: heard apart from
    #                               earlier words, and transcribed again with them
    turn: Turn
    text: str                     # what Whisper heard of them
    ask: Any                      # the end-of-turn question about them, until answered
    probability: float | None = None


class Provisional:
    """The verdict on a turn answered during its end-of-turn silence: confirmed when the
    silence completes, withdrawn when the caller speaks again. Its audio waits for it."""

    def __init__(self, turn: Turn, includes_unanswered: bool = False) -> None:
        self._decided = gevent.event.Event()
        self.turn = turn
        self.includes_unanswered = includes_unanswered   # a restarted turn's earlier part
        self.confirmed = False

    @property
    def withdrawn(self) -> bool:
        return self._decided.is_set() and not self.confirmed

    def confirm(self) -> None:
        self.confirmed = True
        self.turn.confirmed = True      # its work now ranks as a waiting caller's
        self._decided.set()

    def withdraw(self) -> None:
        self._decided.set()

    def wait(self, timeout_s: float) -> bool:
        """True once confirmed; False if withdrawn or still undecided after ``timeout_s``."""
        self._decided.wait(timeout=timeout_s)
        return self.confirmed


class Conversation:
    def __init__(self, engine: Any, sink: AudioSink, rate: int,
                 on_event: EventCallback | None = None, conversation_id: str = "",
                 tools: Any = None, variant: Variant | None = None) -> None:
        self._engine = engine
        self.variant = variant or BASE_VARIANT   # kept for the whole call
        self._tools = tools                    # a ToolHub, or None
        self._hint = tools.stt_hint if tools is not None else ""   # words Whisper expects
        self._tool_context = follow_up.Context()   # the caller's car, TOM's open question
        self._sink = sink
        self.rate = check_rate(rate)
        self._on_event = on_event or (lambda kind, **data: None)
        self.id = conversation_id
        turns = engine.settings.turns
        self._min_barge_in_ms = turns.barge_in_min_speech_ms
        self._sure_barge_in_ms = turns.barge_in_sure_ms
        # (STT job, end-of-turn question, audio, turn) of words said over TOM
        self._check: tuple | None = None
        # Sound said over TOM that did not interrupt it, and when it ended: if the caller
        # goes on and does interrupt, it was the start of what they are saying.
        self._passed_over: tuple[np.ndarray, float] | None = None
        self._waiting_words: WaitingWords | None = None
        self._min_utterance_ms = turns.min_utterance_ms
        v = self.variant
        self._policy = Policy(
            turns.ask_after_ms if v.turn_ask_after_ms is None else v.turn_ask_after_ms,
            turns.ask_every_ms,
            turns.max_silence_ms if v.turn_max_silence_ms is None else v.turn_max_silence_ms,
            turns.complete_threshold)
        self._language = engine.settings.persona.language
        self._asks = 0                         # end-of-turn questions in this silence
        self._ask: Any = None                  # the one being answered, if any
        self._probability: float | None = None  # the latest answer
        self._speech_began_at = 0.0           # when the caller's current speech began
        self._hold_threshold = turns.vad_threshold * HOLD_THRESHOLD_SHARE
        self._energy = EnergyOnset()
        self._audio_ms = 0                    # caller audio received, in ms
        self._last_voice_sign_ms = -RESUME_AFTER_MS
        self._last_sound_ms = -RESUME_AFTER_MS   # a voice sign, or a soft frame
        self._resampler = StreamResampler(rate, 16000)
        self._vad = engine.vad.stream()
        self._detector = TurnDetector(turns, CHUNK_MS)
        self._utterances: gevent.queue.Queue = gevent.queue.Queue()
        self._history: list[dict[str, str]] = []
        self._llm_key = object()               # which LLM copy holds this history
        self._prime_stop = StopFlag()          # the history evaluation still queued, if any
        self._history_limit = 2 * engine.settings.speech.llm_history_turns
        self._reply: Reply | None = None
        self._held_at: float | None = None    # when TOM's audio was held for the caller
        self._hold_latency_s = 0.0
        self._unanswered: np.ndarray | None = None  # audio of a turn abandoned before any answer
        self._speech_end_at = 0.0
        self._last_audible_at = 0.0           # estimated time of the caller's last audible sample
        self._max_answer_wait_s = turns.max_answer_wait_s
        self._speculation: Any = None          # STT job started during the end-of-turn silence
        self._speculation_stop = StopFlag()
        self._provisional: Provisional | None = None   # the turn being answered speculatively
        self._answering = False
        self._expecting_answer = False        # the next turn answers TOM's own question
        self._greenlet: gevent.Greenlet | None = None

    # -- owner side -------------------------------------------------------------------------

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._turn_loop)

    def close(self) -> None:
        self._prime_stop.set()
        if self._reply is not None:
            self._reply.cancel()
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=2)

    @property
    def history(self) -> list[dict[str, str]]:
        return [dict(entry) for entry in self._history]

    @property
    def state(self) -> str:
        """listening, thinking or speaking: what an operator sees for the call."""
        phase = self._phase()
        if phase is ReplyPhase.SPEAKING:
            return "speaking"
        return "thinking" if self._answering or phase is ReplyPhase.THINKING else "listening"

    @property
    def idle(self) -> bool:
        """Nobody is talking and nothing is waiting to be answered."""
        return (not self._answering and self._utterances.empty() and self._check is None
                and self._unanswered is None
                and self._phase() is ReplyPhase.IDLE
                and self._detector.state is SpeechState.QUIET)

    def interrupt(self) -> None:
        """The caller asked TOM to stop (a button, not their voice): whatever TOM is saying
        or has queued to say, its first frame sent or not."""
        if self._phase() is not ReplyPhase.IDLE and self._reply.playing:
            self._barge_in(time.monotonic(), by_voice=False)

    def hush(self) -> None:
        """Stop what TOM is saying or about to say: the call is ending."""
        if self._reply is not None:
            self._reply.cancel()
        self._sink.clear()

    def hear_text(self, text: str) -> None:
        """A turn the caller typed (keypad digits) rather than spoke."""
        self._utterances.put(Utterance(np.zeros(0, np.float32),
                                       Turn(time.monotonic(), owner=self.id), text=text))

    def expect_answer(self, expecting: bool = True) -> None:
        """The caller's next turn answers a question TOM asked (may this call be recorded?):
        it is reported as an ``answer`` event with its text, and the LLM does not answer it.
        ``expecting=False`` ends the wait (the caller pressed a key instead)."""
        self._expecting_answer = expecting

    def say(self, phrase: str) -> None:
        """Speak a pre-synthesised phrase (greeting, re-prompt) as an interruptible reply."""
        reply = Reply(self._sink, self._engine.drop_stopped)
        text = self.variant.greeting if phrase == "greeting" and self.variant.greeting \
            else self._engine.persona.phrases[phrase]
        reply.speak(text, self._phrase(phrase))
        self._remember(reply, None)
        self._reply = reply
        self._on_event("reply_text", text=text)

    def _phrase(self, name: str) -> list[bytes]:
        """A fixed phrase as this call's variant says it (its voice, its pace)."""
        return self._engine.phrase(phrase_name(name, self.variant), self.rate)

    def feed(self, pcm: bytes) -> None:
        """One frame of caller audio (s16le mono at the conversation's rate)."""
        now = time.monotonic()
        samples = pcm_to_float(pcm)
        self._note_audible(samples, now)
        sound = self._energy.hear(samples)
        voice_sign = sound is Sound.LOUD
        for probability, chunk in self._vad.process(self._resampler.process(samples)):
            before = self._detector.state
            for detected in self._detector.push(probability, chunk):
                self._on_detected(detected, now)
            if self._detector.state is SpeechState.STOPPING and before is SpeechState.SPEAKING:
                # The VAD hears the end a chunk or more late; the caller's wait for the
                # answer starts with their last audible sample.
                self._speech_end_at = min(self._last_audible_at, now)
            elif self._detector.state is not SpeechState.STOPPING:
                self._drop_speculation()
            voice_sign = voice_sign or probability >= self._hold_threshold \
                or self._detector.state in (SpeechState.STARTING, SpeechState.SPEAKING)
        self._audio_ms += FRAME_MS
        if voice_sign:
            self._last_voice_sign_ms = self._audio_ms
        if sound is not Sound.QUIET:          # a voice sign, or a soft frame
            self._last_sound_ms = self._audio_ms
        self._take_turn_decision(now)
        self._follow_check(now)
        self._follow_waiting_words(now)
        self._follow_end_of_turn(now)

    def _note_audible(self, samples: np.ndarray, now: float) -> None:
        """Remember when the frame's last sample above the line's noise was spoken: the
        frame arrived at ``now``, when its last sample had just been spoken."""
        loud = np.flatnonzero(np.abs(samples) > max(MIN_LOUD_RMS, self._energy.floor * 4))
        if len(loud):
            self._last_audible_at = now - float(len(samples) - 1 - loud[-1]) / self.rate

    def _follow_end_of_turn(self, now: float) -> None:
        """In the caller's silence: ask whether they are done, end the turn when they are."""
        if self._detector.state is not SpeechState.STOPPING:
            return
        # The VAD hears silence a chunk or three after the caller's last audible sample, and
        # it misses a quiet syllable ("a") as the caller goes on: once the VAD agrees that
        # it is silence, the caller's own silence is the earlier and the safer signal.
        silent_ms = (now - self._last_audible_at) * 1000
        if self._phase() is ReplyPhase.SPEAKING:
            # Speech over TOM's voice is over once it is quiet; its words decide what it was.
            if silent_ms >= self._policy.ask_after_ms:
                self._end_turn(now)
            return
        if self._detector.speech_ms < self._min_utterance_ms:
            return    # too short to answer; if nothing follows, the long bound drops it
        evidence = self._evidence()
        step = next_step(self._policy, silent_ms, evidence, self._language)
        if step is Step.ASK:
            if self._asks == 0:
                self._speculate()
            self._asks += 1
            self._ask = self._engine.turn_complete_async(self._turn_audio(),
                                                         self._provisional.turn)
        elif step is Step.END:
            self._report_end_of_turn(silent_ms, evidence)
            self._end_turn(now)

    def _report_end_of_turn(self, silent_ms: float, evidence: Evidence) -> None:
        self._on_event("end_of_turn", silence_ms=round(silent_ms), asks=evidence.asks,
                       probability=evidence.probability,
                       unfinished=None if evidence.text is None else
                       unfinished(evidence.text, self._language))

    def _model_answer(self, ask: Any) -> float:
        """The end-of-turn model's answer to a question it has answered."""
        if ask.result.successful():
            return ask.result.value
        # The model failed: decide on the words and the silence alone.
        self._engine.metrics.record_error("turn")
        event(log, "end_of_turn_failed", level=logging.ERROR, conversation=self.id,
              error=type(ask.result.exception).__name__)
        return 1.0

    def _evidence(self) -> Evidence:
        if self._ask is not None and self._ask.result.ready():
            self._probability, self._ask = self._model_answer(self._ask), None
        text = None
        if self._speculation is not None and self._speculation.result.ready():
            value = self._speculation.result.value if self._speculation.result.successful() \
                else None
            # No believable words ("Hello? Hello? Hello?" from a lone word): the model alone
            # must not end a turn whose words are not known, or the caller's next words
            # would start a turn of their own and these would be lost.
            text = value[0].text if value and not value[0].dropped else None
        return Evidence(self._asks, self._ask is not None, self._probability, text)

    def _end_turn(self, now: float) -> None:
        for detected in self._detector.end_turn():
            self._on_detected(detected, now)

    def _turn_audio(self) -> np.ndarray:
        """What the caller has said in this turn, a restarted turn's earlier part included."""
        audio = self._detector.audio_so_far()
        return audio if self._unanswered is None else np.concatenate([self._unanswered, audio])

    def _speculate(self) -> None:
        self._speculation_stop = StopFlag()
        audio = self._turn_audio()
        turn = Turn(self._speech_end_at, confirmed=False, owner=self.id)
        self._speculation = self._engine.transcribe_async(audio, self._speculation_stop, turn,
                                                          self._hint)
        self._provisional = Provisional(turn, includes_unanswered=self._unanswered is not None)
        self._utterances.put(Utterance(audio, turn, self._speculation,
                                       provisional=self._provisional,
                                       speech_ms=self._detector.speech_ms))

    def _drop_speculation(self) -> None:
        """The caller spoke again: the guess is stale. If it has not started, it never will,
        and the reply computing it stops, its queued work dropped at once: this call's next
        turn must not wait behind it (its holding phrase not yet armed) while other callers'
        work runs."""
        if self._speculation is not None:
            self._speculation_stop.set()
            self._speculation = None
        if self._provisional is not None:
            self._provisional.withdraw()
            if self._reply is not None and self._reply.provisional is self._provisional:
                self._reply.cancel()         # its answer will never be heard
            self._provisional = None
        self._asks, self._ask, self._probability = 0, None, None

    def _on_detected(self, detected: Any, now: float) -> None:
        if isinstance(detected, SpeechStarted):
            self._speech_began_at = now - self._detector.speech_ms / 1000
            self._on_event("speech_started")
        elif isinstance(detected, NoiseDiscarded):
            event(log, "noise_discarded", level=logging.DEBUG, speech_ms=detected.speech_ms)
            if self._unanswered is not None:  # never leave a restarted turn unanswered
                self._utterances.put(Utterance(self._unanswered, Turn(now, owner=self.id)))
                self._unanswered = None
        elif isinstance(detected, UtteranceEnded):
            if self._provisional is not None and not self._provisional.withdrawn \
                    and not detected.cut and self._phase() is not ReplyPhase.SPEAKING:
                self._provisional.confirm()    # its answer is on the way already
                if self._provisional.includes_unanswered:
                    self._unanswered = None
                self._provisional, self._speculation = None, None
                self._asks, self._ask, self._probability = 0, None, None
                return
            self._drop_speculation()
            if self._phase() is ReplyPhase.SPEAKING:
                # Said over TOM, too short to be sure of: TOM holds while Whisper hears it.
                # Words from a moment ago that Whisper has not heard yet (a busy machine) are
                # heard again with these, in order, rather than forgotten.
                earlier = self._check[2] if self._check is not None else None
                if earlier is not None or (detected.speech_ms >= self._min_barge_in_ms
                                           and self._held_at is not None):
                    audio = detected.audio if earlier is None else \
                        np.concatenate([earlier, detected.audio])
                    turn = Turn(self._speech_end_at, owner=self.id)
                    # Whether they were all is asked at once too: words that interrupted
                    # TOM are often a whole question ("Where is your shop?").
                    self._check = (self._engine.transcribe_async(audio, turn=turn,
                                                                 hint=self._hint),
                                   self._engine.turn_complete_async(audio, turn), audio, turn)
                else:
                    event(log, "backchannel_ignored", speech_ms=detected.speech_ms)
                    self._pass_over(detected.audio)
                return
            audio = detected.audio
            if self._unanswered is not None:
                audio, self._unanswered = np.concatenate([self._unanswered, audio]), None
            speech_end = now if detected.cut else self._speech_end_at
            speculation = None if detected.cut else self._speculation
            self._speculation = None
            self._utterances.put(Utterance(audio, Turn(speech_end, owner=self.id),
                                           speculation, speech_ms=detected.speech_ms))

    def _follow_check(self, now: float) -> None:
        """Words said over TOM are known: a listening word lets TOM go on, others are a turn."""
        if self._check is None or not self._check[0].result.ready():
            return
        ticket, ask, audio, turn = self._check
        self._check = None
        value = ticket.result.value if ticket.result.successful() else None
        if value is None or value[0].dropped or value[0].avg_logprob < SURE_WORDS_LOGPROB \
                or is_backchannel(value[0].text, self._language):
            event(log, "backchannel_ignored", conversation=self.id)
            self._pass_over(audio)
            return                     # TOM resumes with the next decision
        if self._phase() is ReplyPhase.SPEAKING:
            self._barge_in(now)
        self._unanswered = self._with_passed_over(self._unanswered)
        if self._unanswered is not None:    # the caller went on with the turn TOM answered
            audio, ticket = np.concatenate([self._unanswered, audio]), None
        # These words begin the caller's turn ("Wait, … I want …"): it ends by the usual
        # rules if they go on; if they say no more, once the words and the model agree that
        # they were all, or after TOM_TURN_MAX_SILENCE_MS.
        self._unanswered = audio
        if self._detector.state is SpeechState.QUIET:
            self._waiting_words = WaitingWords(ticket, turn, value[0].text, ask)

    def _follow_waiting_words(self, now: float) -> None:
        waiting = self._waiting_words
        if waiting is None:
            return
        if self._unanswered is None or self._detector.state is not SpeechState.QUIET:
            self._waiting_words = None      # the caller went on: their turn carries the words
            return
        if waiting.ask is not None and waiting.ask.result.ready():
            waiting.probability, waiting.ask = self._model_answer(waiting.ask), None
        evidence = Evidence(1, waiting.ask is not None, waiting.probability, waiting.text)
        silent_ms = (now - waiting.turn.speech_end_at) * 1000
        if silent_ms >= self._policy.max_silence_ms or \
                said_all(self._policy, evidence, self._language):
            self._waiting_words = None
            self._report_end_of_turn(silent_ms, evidence)
            self._utterances.put(Utterance(self._unanswered, waiting.turn,
                                           waiting.transcription))
            self._unanswered = None

    def _phase(self) -> ReplyPhase:
        reply = self._reply
        if reply is None or reply.stop.is_set():
            return ReplyPhase.IDLE
        if reply.provisional is not None and not reply.provisional.confirmed:
            return ReplyPhase.IDLE   # nothing has been said, and nothing will be if withdrawn
        if not reply.heard:          # queued, perhaps, but held before its first frame
            if reply.started and not reply.holding_phrase \
                    and self._sink.position < reply.spoken[0].start:
                return ReplyPhase.SPEAKING     # the caller hears what TOM said before it
            return ReplyPhase.THINKING
        return ReplyPhase.SPEAKING if reply.playing else ReplyPhase.IDLE

    def _take_turn_decision(self, now: float) -> None:
        phase = self._phase()
        # While THINKING the only voice of TOM's that can play is its holding phrase.
        tom_heard = phase is ReplyPhase.THINKING and self._reply.holding_phrase
        action = decide(phase, self._detector.state, self._detector.speech_ms,
                        self._held_at is not None, self._min_barge_in_ms,
                        quiet_ms=self._audio_ms - self._last_voice_sign_ms,
                        resume_after_ms=RESUME_AFTER_MS, sure_ms=self._sure_barge_in_ms,
                        checking=self._check is not None,
                        soft_quiet_ms=None if tom_heard else self._audio_ms - self._last_sound_ms)
        if action is Action.HOLD:
            self._sink.hold()
            self._held_at = now
            self._hold_latency_s = time.monotonic() - now
        elif action is Action.RESUME:
            self._sink.resume()
            self._held_at = None
        elif action is Action.BARGE_IN:
            self._barge_in(now)
        elif action is Action.RESTART:
            if self._reply.holding_phrase or self._reply.started:
                self._sink.clear()       # "one moment, please", or an answer held unheard
            self._reply.cancel()         # a hold ends with the next frame (idle: resume)
            if self._reply.started:
                self._reply.superseded = True
                self._forget(self._reply)
            self._unanswered = self._reply.utterance_audio
            self._on_event("restart")

    def _barge_in(self, now: float, by_voice: bool = True) -> None:
        reply = self._reply
        reply.interrupt()
        # The caller stopped hearing TOM when the audio was held; that is the latency they felt.
        latency = self._hold_latency_s if self._held_at is not None else time.monotonic() - now
        self._held_at = None
        self._engine.metrics.barge_in_latency.observe(latency)
        self._on_event("barge_in", latency_ms=round(latency * 1000, 1), heard=reply.text())
        event(log, "barge_in", conversation=self.id, latency_ms=round(latency * 1000, 1))
        if by_voice and self._went_on(reply):
            # The caller only paused: TOM answered too early. Their earlier words and these
            # are one turn, answered as a whole.
            reply.superseded = True
            self._unanswered = reply.utterance_audio
            self._forget(reply)
            self._on_event("restart")
        elif reply.history_entry is not None:
            self._prime()          # the history now says what the caller actually heard
        if by_voice:
            self._unanswered = self._with_passed_over(self._unanswered)
        if self._check is not None:
            # Words said over TOM a moment ago begin what the caller is saying now.
            audio = self._check[1]
            self._check = None
            self._unanswered = audio if self._unanswered is None else np.concatenate(
                [self._unanswered, audio])

    def _pass_over(self, audio: np.ndarray) -> None:
        kept = self._with_passed_over(None)
        self._passed_over = (audio if kept is None else np.concatenate([kept, audio]),
                             self._last_audible_at)

    def _with_passed_over(self, earlier: np.ndarray | None) -> np.ndarray | None:
        """``earlier`` followed by the sound passed over while TOM spoke, if the caller's
        current speech began within TOM_TURN_MAX_SILENCE_MS of its end (it is taken)."""
        passed_over, self._passed_over = self._passed_over, None
        if passed_over is None or \
                self._speech_began_at - passed_over[1] > self._policy.max_silence_ms / 1000:
            return earlier
        return passed_over[0] if earlier is None else np.concatenate([earlier, passed_over[0]])

    def _went_on(self, reply: Reply) -> bool:
        """Did the caller, now speaking, go on with the turn ``reply`` answers?"""
        return reply.turn is not None and went_on(     # no turn: a set phrase, not an answer
            self._speech_began_at, reply.turn.speech_end_at, reply.first_heard_at,
            self._policy.max_silence_ms / 1000)

    def _forget(self, reply: Reply) -> None:
        """Take a superseded exchange out of the history, if it got there."""
        entry = reply.history_entry
        for index, candidate in enumerate(self._history):
            if candidate is entry:
                start = index - 1 if index and self._history[index - 1]["role"] == "user" \
                    else index
                del self._history[start:index + 1]
                self._prime()
                return

    # -- turn greenlet ----------------------------------------------------------------------

    def _turn_loop(self) -> None:
        while True:
            utterance = self._utterances.get()
            if utterance.provisional is not None and utterance.provisional.withdrawn:
                self._engine.metrics.record_turn("withdrawn")   # before it was even begun
                continue
            self._answering = True
            reply = Reply(self._sink, self._engine.drop_stopped)
            reply.utterance_audio = utterance.audio
            reply.turn = utterance.turn
            reply.provisional = utterance.provisional
            self._reply = reply
            holding = gevent.spawn_later(
                max(0.0, utterance.speech_end_at + self._max_answer_wait_s - time.monotonic()),
                self._hold_on, utterance, reply)
            try:
                outcome = self._answer(utterance, reply)
            except (PipelineError, gevent.Timeout) as exc:
                outcome = self._fall_back(utterance, reply, exc)
            except Exception as exc:  # the greenlet boundary: a bug must not end the call
                event(log, "turn_crashed", level=logging.ERROR, exc_info=True,
                      conversation=self.id)
                outcome = self._fall_back(utterance, reply, exc)
            finally:       # a closed conversation must not say "one moment" later
                holding.kill(block=False)
            self._answering = False
            self._engine.metrics.record_turn(outcome)
            if outcome != "withdrawn":     # a speculative answer nobody heard: not a turn
                self._on_event("turn_ended", outcome=outcome)

    def _answer(self, utterance: Utterance, reply: Reply) -> str:
        engine = self._engine
        if utterance.text:
            transcript, stt_s = Transcript(utterance.text, 0.0, 0.0, 0), 0.0
        else:
            job = utterance.transcription or engine.transcribe_async(
                utterance.audio, turn=utterance.turn, hint=self._hint)
            transcript, stt_s = engine.finish_transcription(job)
            if transcript is None:      # a speculation dropped while it waited for Whisper
                return "withdrawn"
        if utterance.provisional is not None and utterance.provisional.withdrawn:
            return "withdrawn"
        if reply.stop.is_set():
            return "restarted"
        if transcript.dropped:
            if not self._verdict(utterance, reply):
                return "withdrawn"
            event(log, "transcript_dropped", conversation=self.id, reason=transcript.dropped)
            self._on_event("transcript_dropped", reason=transcript.dropped)
            if utterance.speech_ms >= SAID_SOMETHING_MS:
                self._speak_fallback(reply)      # "Sorry, I did not catch that…"
            return "dropped"
        reply.heard_text = transcript.text
        if self._expecting_answer:
            if not self._verdict(utterance, reply):
                return "withdrawn"
            self._expecting_answer = False
            self._on_event("answer", text=transcript.text)
            return "question_answered"
        latencies: dict[str, float] = {"stt_ms": stt_s * 1000, "llm_max_step_ms": 0.0}
        found = self._tools.consult(transcript.text, self._language, self._tool_context) \
            if self._tools is not None else None
        facts = ""
        if found is not None:
            latencies["tool_ms"] = found.latency_s * 1000
            self._on_event("tool", tool=found.tool, answer=found.answer.kind)
            if found.answer.failed or not self._tools.llm_phrasing:
                for sentence in found.answer.sentences():
                    self._speak_sentence(reply, sentence, utterance, latencies,
                                         transcript.text)
                    if reply.stop.is_set():
                        break
                return self._finish(utterance, reply, transcript.text, latencies,
                                    "tool_failed" if found.answer.failed else "answered",
                                    found)
            facts = found.answer.text
        self._ask_llm(utterance, reply, transcript.text, facts, latencies)
        return self._finish(utterance, reply, transcript.text, latencies, "answered", found)

    def _ask_llm(self, utterance: Utterance, reply: Reply, text: str, facts: str,
                 latencies: dict[str, float]) -> None:
        engine = self._engine
        mailbox = HubMailbox()
        self._prime_stop.set()         # the completion evaluates the history itself
        llm_started = time.monotonic()
        ticket = engine.start_reply(
            engine.messages(self._history, text, facts, self.variant.system_prompt),
            reply.stop, lambda kind, value: mailbox.post((kind, value)), utterance.turn,
            key=self._llm_key, temperature=self.variant.temperature)
        last_step_at = llm_started
        corrected = False
        while True:
            kind, value = self._next_llm_event(mailbox, ticket)
            # The longest the LLM kept this caller waiting for its next piece of the answer.
            latencies["llm_max_step_ms"] = max(latencies["llm_max_step_ms"],
                                               (time.monotonic() - last_step_at) * 1000)
            if kind == "error":
                raise value
            if kind == "done" or reply.stop.is_set():
                break
            if kind == "first_token":
                engine.metrics.llm_latency.observe(time.monotonic() - llm_started)
                latencies["llm_first_token_ms"] = (time.monotonic() - llm_started) * 1000
            elif kind == "sentence":
                piece = honest(value, self._language)
                # "I'm not a chatbot. I'm a human." becomes the truth, said once.
                if piece == value or not corrected:
                    self._speak_sentence(reply, piece, utterance, latencies, text)
                corrected = corrected or piece != value
            last_step_at = time.monotonic()

    def _finish(self, utterance: Utterance, reply: Reply, text: str,
                latencies: dict[str, float], outcome: str, found: Any = None) -> str:
        """The answer has been said (or given up): the turn's outcome. What the tools
        found (a ToolResult, or None) becomes the call's context only now: a withdrawn or
        restarted answer was never the caller's."""
        if not self._verdict(utterance, reply):
            return "withdrawn"
        if reply.superseded or (reply.stop.is_set() and not reply.started):
            return "restarted"
        if self._tools is not None:
            self._tool_context = follow_up.remember(
                self._tool_context, found.lookup if found else None,
                found.answer.kind if found else "")
        empty = not reply.started
        if empty:       # the model said nothing speakable, or only a loop: never silence
            self._speak_fallback(reply)
        self._publish_transcript(reply, text)
        self._remember(reply, text)
        self._on_event("reply_done", text=reply.text(), latencies=latencies,
                       interrupted=reply.interrupted_at is not None)
        if empty:
            return "empty"
        if reply.interrupted_at is not None:
            return "interrupted"
        return outcome

    @staticmethod
    def _next_llm_event(mailbox: HubMailbox, ticket: Any) -> tuple[str, Any]:
        """The completion's next event; the step deadline runs only once it computes."""
        while True:
            try:
                return mailbox.get(timeout_s=LLM_STEP_TIMEOUT_S)
            except gevent.queue.Empty:
                if ticket.started.is_set():
                    raise
                ticket.started.wait(timeout=QUEUE_TIMEOUT_S)
                if not ticket.started.is_set():
                    raise

    def _hold_on(self, utterance: Utterance, reply: Reply) -> None:
        """The answer has not started within TOM_MAX_ANSWER_WAIT_S of the caller's last word:
        say "one moment, please", so that the line is never silent for long."""
        if utterance.provisional is not None and not utterance.provisional.wait(
                VERDICT_TIMEOUT_S):
            return
        if reply.started or reply.stop.is_set():
            return
        reply.holding_phrase = True
        self._sink.play(self._phrase("holding"))
        self._engine.metrics.holding_phrases.inc()
        self._on_event("holding_phrase")
        event(log, "holding_phrase", conversation=self.id,
              waited_ms=round((time.monotonic() - utterance.speech_end_at) * 1000))

    def _verdict(self, utterance: Utterance, reply: Reply) -> bool:
        """For a speculative turn, wait until the caller's silence has lasted (True) or they
        spoke again (False: the answer is dropped unheard)."""
        if utterance.provisional is None:
            return True
        if utterance.provisional.wait(VERDICT_TIMEOUT_S):
            return True
        # Undecided in time: withdraw it, so that the end of this turn, when it comes, is
        # queued as an utterance of its own instead of confirming an answer given up on.
        utterance.provisional.withdraw()
        reply.cancel()
        return False

    def _publish_transcript(self, reply: Reply, text: str) -> None:
        if not reply.transcript_published:
            reply.transcript_published = True
            self._on_event("transcript", text=text)
            event(log, "transcript", conversation=self.id, text=personal(text))

    def _speak_sentence(self, reply: Reply, sentence: str, utterance: Utterance,
                        latencies: dict[str, float], user_text: str) -> None:
        started = time.monotonic()
        first = not reply.started
        frames = self._engine.synthesize(sentence, self.rate, utterance.turn, first_audio=first,
                                         stop=reply.stop,
                                         length_scale=self.variant.length_scale,
                                         voice=self.variant.voice)
        synthesis_s = time.monotonic() - started
        if reply.stop.is_set() or not frames or not self._verdict(utterance, reply):
            return
        self._publish_transcript(reply, user_text)
        start = reply.speak(sentence, frames)
        utterance.turn.playout_ends_at = time.monotonic() + FRAME_MS / 1000 * (
            self._sink.frames_queued - self._sink.position)
        self._on_event("reply_text", text=sentence)
        if first:
            latencies["tts_first_audio_ms"] = synthesis_s * 1000

            def first_frame_sent(at: float) -> None:
                # e2e as the caller feels it: their last audible sample to the answer's
                # first frame leaving TOM.
                reply.first_heard_at = at
                e2e_s = at - utterance.speech_end_at
                self._engine.metrics.e2e_latency.observe(e2e_s)
                latencies["e2e_ms"] = e2e_s * 1000
                self._on_event("reply_audio", e2e_ms=latencies["e2e_ms"])

            self._sink.when_sent(start, first_frame_sent)

    def _remember(self, reply: Reply, user_text: str | None) -> None:
        """Record the exchange; the assistant's part is what the caller heard, and an
        interruption arriving later rewrites it (Reply.interrupt)."""
        if user_text is not None:
            self._history.append({"role": "user", "content": user_text})
        if reply.started:
            reply.history_entry = {"role": "assistant", "content": reply.text()}
            self._history.append(reply.history_entry)
        if len(self._history) > self._history_limit:
            self._trim_history()
        # Even after a completion: the answer as heard is tokenized afresh in the next
        # prompt, and rarely into the very tokens the model generated.
        self._prime()

    def _prime(self) -> None:
        """Have the LLM evaluate the history now, while the caller listens and speaks, so
        that their next turn only costs their own words."""
        self._prime_stop.set()         # a queued evaluation of an older history is moot
        self._prime_stop = StopFlag()
        self._engine.prime(self._engine.messages(self._history, "",
                                                 system_prompt=self.variant.system_prompt),
                           key=self._llm_key,
                           stop=self._prime_stop)

    def _trim_history(self) -> None:
        """Forget the older half of the history at once, not a turn at a time: llama.cpp
        reuses the evaluated prompt up to the first change, so a window sliding every turn
        would make it evaluate the whole history again on every turn."""
        keep = self._history_limit // 2
        cut = len(self._history) - keep
        while cut < len(self._history) and self._history[cut]["role"] != "user":
            cut += 1
        del self._history[:cut]

    def _speak_fallback(self, reply: Reply) -> None:
        """The fallback sentence ("Sorry, I did not catch that…") in this call's voice."""
        reply.speak(self._engine.persona.phrases["fallback"], self._phrase("fallback"))

    def _fall_back(self, utterance: Utterance, reply: Reply, exc: BaseException) -> str:
        component = getattr(exc, "component", "pipeline")
        self._engine.metrics.record_error(component)
        event(log, "turn_failed", level=logging.ERROR, conversation=self.id,
              component=component, error=type(exc).__name__)
        self._on_event("error", component=component)
        reply.cancel()
        if not self._verdict(utterance, reply):
            return "withdrawn"     # the caller went on: their whole utterance comes next
        if reply.heard_text is not None:    # the turn is recorded with what was said
            self._publish_transcript(reply, reply.heard_text)
        if reply.interrupted_at is None and not reply.started:
            self._reply = Reply(self._sink, self._engine.drop_stopped)
            self._speak_fallback(self._reply)
        return "fallback"
