"""Who gets the CPU next (pure): first answer audio first, across every call.

TOM's inference runs in CPU *slots*: at most as many jobs compute at once as the budget has
slots, each with the same number of threads (see :func:`cpu_budget`), so stages running at
the same time never oversubscribe the cores. A job that waits for a slot waits in one queue
shared by every stage and call, ordered by :func:`rank`:

1. first audio of a confirmed turn: the STT of an ended turn, the LLM up to its first
   sentence, the TTS of that sentence. A caller is waiting in silence; the one who has
   waited longest goes first.
2. the same work for a speculative turn (answered during the end-of-turn silence), which
   may still be withdrawn.
3. continuation: the rest of an answer that is already playing, by the time its audio runs
   out. A continuation whose audio runs out within ``CONTINUATION_SLACK_S`` ranks as first
   audio: a gap in the middle of an answer is as bad as a late start.
4. background work (evaluating a trimmed history ahead of time).

A job whose model's threads sleep while they wait for each other (Piper's) may compute
*wide*, in more than one slot (more threads), when slots are left over after every job that
can start has one. A running LLM job reaches a checkpoint between tokens; there it gives its
slot up when a job that ranks higher is waiting and could start with it
(:func:`should_yield`). So the most urgent job, if it could compute wider than the free
slots allow, waits for such a checkpoint rather than starting narrow: the first sentence's
audio, synthesised in two slots instead of one while the LLM goes on with the next sentence,
reaches the caller about 70 ms sooner, for a wait of one token (about 20 ms).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Mapping, Sequence

# A continuation this close to its audio running out competes with first audio.
CONTINUATION_SLACK_S = 1.0


class Urgency(enum.IntEnum):
    FIRST_AUDIO = 0
    SPECULATIVE = 1
    CONTINUATION = 2
    BACKGROUND = 3


@dataclasses.dataclass
class Turn:
    """What the scheduler knows about the answer a job works for; the conversation updates
    it as the turn goes on, and every decision reads it afresh."""

    speech_end_at: float              # monotonic time the caller stopped speaking
    confirmed: bool = True            # False while the turn may still be withdrawn
    playout_ends_at: float | None = None   # when the answer audio queued so far runs out
    owner: str = ""                   # the conversation, for logs


@dataclasses.dataclass(frozen=True)
class Budget:
    slots: int              # inference jobs computing at once
    threads_per_job: int    # threads each model uses inside one job

    @property
    def reserve(self) -> int:
        """Slots kept free of continuation and background work for the next caller."""
        return 1 if self.slots >= 2 else 0


def cpu_budget(cores: int) -> Budget:
    """Slots and threads for ``cores`` usable cores. Up to four cores every job is
    single-threaded: no thread ever waits at a barrier for a sibling that another job's
    thread has pushed off its core. Beyond that, jobs get more threads and the slots stay
    at four, so four calls can each have one stage in progress."""
    cores = max(1, cores)
    threads = max(1, cores // 4)
    return Budget(slots=cores // threads, threads_per_job=threads)


@dataclasses.dataclass
class Job:
    stage: str                    # which model: stt, llm, tts
    first_audio: bool             # True while the job's output is the turn's first audio
    turn: Turn | None             # None: background work
    seq: int                      # submission order, the last tie-breaker
    holds_worker: bool = False    # yielded at a checkpoint: it keeps its model thread
    max_slots: int = 1            # how wide it can compute (its model's thread choices)
    checkpoints: bool = False     # reaches a checkpoint between steps once past first audio


def urgency(job: Job, now: float) -> Urgency:
    turn = job.turn
    if turn is None:
        return Urgency.BACKGROUND
    if job.first_audio:
        return Urgency.FIRST_AUDIO if turn.confirmed else Urgency.SPECULATIVE
    if turn.playout_ends_at is not None and turn.playout_ends_at - now <= CONTINUATION_SLACK_S:
        return Urgency.FIRST_AUDIO
    return Urgency.CONTINUATION


def rank(job: Job, now: float) -> tuple[int, float, int]:
    """Sort key: lower goes first."""
    level = urgency(job, now)
    turn = job.turn
    if turn is None:
        due = 0.0
    elif job.first_audio or turn.playout_ends_at is None:
        due = turn.speech_end_at
    else:
        due = turn.playout_ends_at
    return int(level), due, job.seq


def dispatch(waiting: Sequence[Job], idle_workers: Mapping[str, int], free_slots: int,
             now: float, reserve: int = 0,
             running: Sequence[Job] = ()) -> list[tuple[Job, int]]:
    """The jobs to start now with their slots, in rank order: each needs a free slot and a
    model thread of its stage (a yielded job still has its own). A job that cannot start
    does not block lower ranked jobs of other stages. The jobs of one urgency level go wide
    into the slots their level leaves over before any job of a lower level starts: the
    first sentence's audio gets both cores while the rest of the answer waits.
    Continuation and background work never take the last ``reserve`` free slots: a caller
    who stops speaking finds a slot free instead of waiting for a sentence that is not
    needed for seconds (a model call cannot be interrupted). If the most urgent job could
    compute wider than the free slots allow and a ``running`` job will give its slot up to
    it at its next checkpoint, nothing starts until it has."""
    idle = dict(idle_workers)
    started: list[list] = []
    ordered = sorted(waiting, key=lambda j: rank(j, now))
    if ordered and _waits_to_go_wide(ordered[0], idle, free_slots, running, now):
        return []
    for level in sorted({urgency(job, now) for job in ordered}):
        kept = reserve if level >= Urgency.CONTINUATION else 0
        this_level = []
        for job in ordered:
            if free_slots <= kept or urgency(job, now) != level:
                continue
            if not job.holds_worker:
                if idle.get(job.stage, 0) == 0:
                    continue
                idle[job.stage] -= 1
            free_slots -= 1
            this_level.append([job, 1])
        for entry in this_level:
            extra = max(0, min(free_slots - kept, entry[0].max_slots - 1))
            entry[1] += extra
            free_slots -= extra
        started += this_level
    return [(job, slots) for job, slots in started]


def _waits_to_go_wide(job: Job, idle_workers: Mapping[str, int], free_slots: int,
                      running: Sequence[Job], now: float) -> bool:
    can_start = job.holds_worker or idle_workers.get(job.stage, 0) > 0
    return can_start and job.max_slots > free_slots and any(
        other.checkpoints and not other.first_audio and urgency(other, now) > urgency(job, now)
        for other in running)


def should_yield(running: Job, waiting: Sequence[Job], idle_workers: Mapping[str, int],
                 now: float) -> bool:
    """At a checkpoint: give every slot up if a job of a more urgent level is waiting and
    could start in them (it may then compute wide)."""
    mine = urgency(running, now)
    for job in waiting:
        if urgency(job, now) < mine and (job.holds_worker
                                         or idle_workers.get(job.stage, 0) > 0):
            return True
    return False
