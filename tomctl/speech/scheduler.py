"""Runs inference jobs in real threads, one CPU slot each, in the order scheduling.py decides.

Each stage (stt, llm, tts) has its own real threads, one per model copy that can compute at
once; a thread computes only while its job holds one of the budget's CPU slots, and every
waiting job of every stage and call is in one queue. Greenlets submit jobs and wait for their
results on the hub; worker threads never touch the hub except to hand results back.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any, Callable

import gevent
import gevent.event

from tomctl.errors import PipelineError
from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.speech.offload import StopFlag
from tomctl.speech.scheduling import Budget, Job, Turn, dispatch, should_yield, urgency

log = logging.getLogger(__name__)

# A job's queue wait is bounded by admission (TOM_MAX_CALLS) and answered with the holding
# phrase long before this; the deadline only catches a scheduler that stopped dispatching.
QUEUE_TIMEOUT_S = 120.0


class SchedulerClosed(PipelineError):
    component = "pipeline"


# The result of a job dropped before it computed: its answer was given up (a withdrawn
# speculation, an interrupted reply) while it waited for a slot.
DROPPED = object()


class Running:
    """What a job's function gets to talk to the scheduler from its worker thread."""

    def __init__(self, scheduler: "Scheduler", entry: "_Entry") -> None:
        self._scheduler = scheduler
        self._entry = entry
        self.job = entry.job

    @property
    def threads(self) -> int:
        """How many threads the job may compute with now: its slots' worth."""
        return self._entry.slots * self._scheduler.budget.threads_per_job

    def checkpoint(self) -> None:
        """Give the slot to a more urgent job if one waits; returns once the job may compute
        again."""
        self._scheduler._checkpoint(self._entry)

    def first_audio_done(self) -> None:
        """What the job computes from now on only continues an answer."""
        self.job.first_audio = False


class Ticket:
    """A submitted job, seen from the greenlet that waits for it."""

    def __init__(self) -> None:
        self.started = gevent.event.Event()
        self.result = gevent.event.AsyncResult()

    def get(self, run_timeout_s: float, queue_timeout_s: float = QUEUE_TIMEOUT_S) -> Any:
        """The job's result. Time spent queued behind other callers' work is not held
        against ``run_timeout_s``: on a busy machine waiting is correct, not a failure."""
        if not self.started.wait(timeout=queue_timeout_s):
            raise gevent.Timeout(queue_timeout_s)
        return self.result.get(timeout=run_timeout_s)


class _Entry:
    __slots__ = ("job", "fn", "args", "ticket", "stop", "submitted_at", "go", "slots")

    def __init__(self, job: Job, fn: Callable[..., Any], args: tuple, ticket: Ticket,
                 stop: StopFlag | None) -> None:
        self.job, self.fn, self.args, self.ticket, self.stop = job, fn, args, ticket, stop
        self.submitted_at = time.monotonic()
        self.go = threading.Event()       # a yielded job: set when it may compute again
        self.slots = 0                    # CPU slots it computes in now


class Scheduler:
    def __init__(self, budget: Budget, metrics: Metrics) -> None:
        self.budget = budget
        self._metrics = metrics
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._waiting: list[_Entry] = []
        self._assigned: dict[str, list[_Entry]] = {}
        self._computing: list[_Entry] = []    # the jobs holding slots
        self._idle: dict[str, int] = {}
        self._workers: dict[str, int] = {}
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._loop = None

    def add_stage(self, stage: str, workers: int) -> None:
        self._workers[stage] = workers

    def start(self) -> None:
        self._loop = gevent.get_hub().loop
        for stage, count in self._workers.items():
            self._idle[stage] = count
            self._assigned[stage] = []
            for number in range(count):
                self._threads.append(threading.Thread(
                    target=self._work_loop, args=(stage,), name=f"tom-{stage}-{number}",
                    daemon=True))
        # Thread.start() waits for the thread to run, which on a busy machine can take
        # longer than the hub may be kept waiting.
        gevent.get_hub().threadpool.apply(lambda: [t.start() for t in self._threads])

    def submit(self, stage: str, fn: Callable[..., Any], *args: Any, first_audio: bool,
               turn: Turn | None, max_slots: int = 1, stop: StopFlag | None = None,
               checkpoints: bool = False) -> Ticket:
        """Queue ``fn(running, *args)`` for a thread of ``stage``; ``turn`` is None for
        background work; ``max_slots`` > 1 lets it compute wide when slots are left over;
        ``checkpoints``: ``fn`` calls ``running.checkpoint()`` between steps once it is past
        its first audio.
        Once ``stop`` is set, the job is dropped if it has not started: its ticket's result
        is DROPPED. Callable from the hub only."""
        ticket = Ticket()
        with self._lock:
            if self._closed:
                raise SchedulerClosed("the engine is shut down")
            job = Job(stage, first_audio, turn, next(self._seq), max_slots=max_slots,
                      checkpoints=checkpoints)
            self._waiting.append(_Entry(job, fn, args, ticket, stop))
            self._dispatch()
        return ticket

    def drop_stopped(self) -> None:
        """Drop now every waiting job whose stop flag is set. Call it from the hub after
        giving an answer up: whoever waits for those jobs is released at once, instead of
        when a slot comes free, which on a busy machine can take seconds."""
        with self._lock:
            self._drop_stopped()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"waiting": len(self._waiting),
                    "running": self.budget.slots - self._free_slots()}

    def close(self, timeout_s: float = 5.0) -> None:
        """Refuse new jobs, fail the queued ones and let running ones finish: a thread
        still inside llama.cpp when the interpreter exits can crash it."""
        with self._lock:
            self._closed = True
            self._work.notify_all()
            abandoned, self._waiting = self._waiting, []
        for entry in abandoned:
            if entry.job.holds_worker:        # yielded mid-job: let it run to its end
                entry.go.set()
                continue
            self._hand_back(entry.ticket.started.set)
            self._hand_back(entry.ticket.result.set_exception,
                            SchedulerClosed("the engine is shut down"))
        deadline = time.monotonic() + timeout_s

        def join() -> None:
            for thread in self._threads:
                thread.join(max(0.0, deadline - time.monotonic()))

        gevent.get_hub().threadpool.apply(join)     # the hub keeps running meanwhile

    # -- under the lock ---------------------------------------------------------------------

    def _free_slots(self) -> int:
        return self.budget.slots - sum(entry.slots for entry in self._computing)

    def _drop_stopped(self) -> None:
        dropped = [e for e in self._waiting if e.stop is not None and e.stop.is_set()
                   and not e.job.holds_worker]
        if not dropped:
            return
        self._waiting = [e for e in self._waiting if e not in dropped]
        for entry in dropped:
            self._hand_back(entry.ticket.started.set)
            self._hand_back(entry.ticket.result.set, DROPPED)

    def _dispatch(self) -> None:
        self._drop_stopped()
        free_slots = self._free_slots()
        if free_slots == 0 or not self._waiting:
            return
        chosen = dispatch([e.job for e in self._waiting], self._idle, free_slots,
                          time.monotonic(), self.budget.reserve,
                          [e.job for e in self._computing])
        if not chosen:
            return
        slots = {id(job): count for job, count in chosen}
        starting = [e for e in self._waiting if id(e.job) in slots]
        self._waiting = [e for e in self._waiting if id(e.job) not in slots]
        for entry in starting:
            entry.slots = slots[id(entry.job)]
            self._computing.append(entry)
            if entry.job.holds_worker:        # a yielded job: its thread waits for `go`
                entry.job.holds_worker = False
                entry.go.set()
            else:
                self._idle[entry.job.stage] -= 1
                self._assigned[entry.job.stage].append(entry)
        self._work.notify_all()

    # -- worker threads ---------------------------------------------------------------------

    def _work_loop(self, stage: str) -> None:
        while True:
            with self._lock:
                while not self._assigned[stage] and not self._closed:
                    self._work.wait()
                if self._closed:
                    return
                entry = self._assigned[stage].pop(0)
            self._run(entry)
            with self._lock:
                self._computing.remove(entry)
                entry.slots = 0
                self._idle[stage] += 1
                self._dispatch()

    def _run(self, entry: _Entry) -> None:
        started = time.monotonic()
        waited = started - entry.submitted_at
        level = urgency(entry.job, started).name.lower()
        self._metrics.queue_wait.labels(stage=entry.job.stage).observe(waited)
        self._hand_back(entry.ticket.started.set)
        try:
            value = entry.fn(Running(self, entry), *entry.args)
        except BaseException as exc:  # the thread boundary: the waiting greenlet gets it
            self._hand_back(entry.ticket.result.set_exception, exc)
        else:
            self._hand_back(entry.ticket.result.set, value)
        if log.isEnabledFor(logging.DEBUG):
            turn = entry.job.turn
            event(log, "job_done", level=logging.DEBUG, stage=entry.job.stage, urgency=level,
                  conversation=turn.owner if turn is not None else "",
                  waited_ms=round(waited * 1000, 1),
                  ran_ms=round((time.monotonic() - started) * 1000, 1))

    def _checkpoint(self, entry: _Entry) -> None:
        job = entry.job
        with self._lock:
            if self._closed or not self._waiting:
                return
            waiting = [e.job for e in self._waiting]
            if not should_yield(job, waiting, self._idle, time.monotonic()):
                # A job that waited for this checkpoint to compute wide starts as it is,
                # should this one have become as urgent as it meanwhile.
                self._dispatch()
                return
            entry.go.clear()
            job.holds_worker = True
            self._waiting.append(entry)
            self._computing.remove(entry)
            entry.slots = 0
            self._dispatch()
        event(log, "job_yielded", level=logging.DEBUG, stage=job.stage)
        entry.go.wait()

    def _hand_back(self, fn: Callable[..., Any], *args: Any) -> None:
        self._loop.run_callback_threadsafe(fn, *args)
