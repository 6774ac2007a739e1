"""The scheduler's pure core: the CPU budget, the order of jobs, dispatch and yielding."""

import time

import pytest

from tomctl.speech.scheduling import (CONTINUATION_SLACK_S, Budget, Job, Turn, Urgency,
                                      cpu_budget, dispatch, rank, should_yield, urgency)

NOW = 100.0


@pytest.mark.parametrize("cores, budget", [
    (1, Budget(slots=1, threads_per_job=1)),
    (2, Budget(slots=2, threads_per_job=1)),
    (4, Budget(slots=4, threads_per_job=1)),
    (8, Budget(slots=4, threads_per_job=2)),
    (16, Budget(slots=4, threads_per_job=4)),
    (0, Budget(slots=1, threads_per_job=1)),
])
def test_the_budget_never_runs_more_threads_than_cores(cores, budget):
    assert cpu_budget(cores) == budget
    assert budget.slots * budget.threads_per_job <= max(1, cores)


def _job(stage="llm", first_audio=True, end=NOW - 0.3, confirmed=True, playout=None, seq=0,
         background=False):
    turn = None if background else Turn(end, confirmed, playout)
    return Job(stage, first_audio, turn, seq)


@pytest.mark.parametrize("job, expected", [
    (_job(), Urgency.FIRST_AUDIO),
    (_job(confirmed=False), Urgency.SPECULATIVE),
    (_job(first_audio=False, playout=NOW + 3.0), Urgency.CONTINUATION),
    # its audio runs out soon: a gap in the answer is as bad as a late start
    (_job(first_audio=False, playout=NOW + CONTINUATION_SLACK_S / 2), Urgency.FIRST_AUDIO),
    (_job(first_audio=False, playout=NOW - 1.0), Urgency.FIRST_AUDIO),
    (_job(background=True), Urgency.BACKGROUND),
])
def test_urgency(job, expected):
    assert urgency(job, NOW) is expected


def test_the_caller_who_has_waited_longest_goes_first():
    early, late = _job(end=NOW - 1.0, seq=2), _job(end=NOW - 0.2, seq=1)
    assert sorted([late, early], key=lambda j: rank(j, NOW)) == [early, late]


def test_continuations_go_by_when_their_audio_runs_out():
    soon = _job(first_audio=False, playout=NOW + 2.0, seq=2)
    later = _job(first_audio=False, playout=NOW + 5.0, seq=1)
    assert sorted([later, soon], key=lambda j: rank(j, NOW)) == [soon, later]


def test_a_confirmed_turn_goes_before_a_speculation_that_ended_earlier():
    speculative = _job(confirmed=False, end=NOW - 2.0)
    confirmed = _job(end=NOW - 0.1)
    assert rank(confirmed, NOW) < rank(speculative, NOW)


def test_confirming_a_turn_raises_its_waiting_jobs():
    turn = Turn(NOW - 0.2, confirmed=False)
    job = Job("stt", True, turn, 0)
    assert urgency(job, NOW) is Urgency.SPECULATIVE
    turn.confirmed = True
    assert urgency(job, NOW) is Urgency.FIRST_AUDIO


def _queue(*specs):
    """(stage, urgency letter, max_slots): F first audio, S speculative, B background; each
    later one ended 0.1 s later."""
    jobs = []
    for seq, (stage, kind, wide) in enumerate(specs):
        turn = None if kind == "B" else Turn(NOW - 1 + seq * 0.1, confirmed=kind == "F")
        jobs.append(Job(stage, True, turn, seq, max_slots=wide))
    return jobs


@pytest.mark.parametrize("specs, idle, slots, started", [
    # most urgent first, one slot each
    ([("tts", "S", 1), ("stt", "F", 1), ("llm", "F", 1)], {"stt": 1, "llm": 1, "tts": 1}, 2,
     [(1, 1), (2, 1)]),
    # no free Whisper thread: the next stage's job starts instead of waiting behind it
    ([("stt", "F", 1), ("stt", "F", 1), ("tts", "F", 1)], {"stt": 1, "llm": 1, "tts": 1}, 2,
     [(0, 1), (2, 1)]),
    # no free slot: nothing starts
    ([("stt", "F", 1)], {"stt": 1}, 0, []),
    # background work waits behind every caller
    ([("llm", "B", 1), ("llm", "F", 1)], {"llm": 1}, 1, [(1, 1)]),
    # alone on the machine, a job that can go wide gets the spare slot
    ([("llm", "F", 2)], {"llm": 1}, 2, [(0, 2)]),
    # but never at the cost of another job that could start
    ([("llm", "F", 2), ("tts", "F", 2)], {"llm": 1, "tts": 1}, 2, [(0, 1), (1, 1)]),
    # the spare slot goes to the most urgent job that can use it
    ([("stt", "F", 1), ("tts", "S", 2)], {"stt": 1, "tts": 1}, 3, [(0, 1), (1, 2)]),
])
def test_dispatch(specs, idle, slots, started):
    # (without a reserve: see the next test)
    jobs = _queue(*specs)
    chosen = dispatch(jobs, idle, slots, NOW)
    assert [(job.seq, count) for job, count in chosen] == started
    assert sum(count for _, count in chosen) <= slots


def _continuation(stage, seq, wide=1):
    return Job(stage, False, Turn(NOW - 1, True, NOW + 5 + seq), seq, max_slots=wide)


@pytest.mark.parametrize("jobs, free, started", [
    # the rest of an answer never takes the last free slot …
    ([_continuation("tts", 0)], 1, []),
    ([_continuation("tts", 0), _continuation("llm", 1, wide=2)], 2, [(0, 1)]),
    # … but a caller's first audio does
    ([_continuation("tts", 0), _job(stage="stt", seq=1)], 1, [(1, 1)]),
])
def test_a_slot_is_kept_free_for_the_next_caller(jobs, free, started):
    chosen = dispatch(jobs, {"stt": 1, "llm": 1, "tts": 2}, free, NOW, reserve=1)
    assert [(job.seq, count) for job, count in chosen] == started


def test_a_yielded_job_needs_only_a_slot():
    resumed = Job("llm", False, Turn(NOW - 1, True, NOW + 5), 0, holds_worker=True)
    assert dispatch([resumed], {"llm": 0}, 1, NOW) == [(resumed, 1)]


def _computing(stage="llm", first_audio=False, playout=NOW + 4.0, checkpoints=True):
    return Job(stage, first_audio, Turn(NOW - 1, True, playout), 9, checkpoints=checkpoints)


@pytest.mark.parametrize("running, free, started", [
    # the first sentence's audio waits a token for the LLM going on with the next sentence
    # to give its slot up, then computes in both
    ([_computing()], 1, []),
    # not for a job that has no checkpoint (Whisper, Smart Turn) …
    ([_computing(stage="stt", checkpoints=False)], 1, [(0, 1)]),
    # … an LLM still before its first sentence, which reaches none …
    ([_computing(first_audio=True)], 1, [(0, 1)]),
    # … or one as urgent as itself (a continuation whose audio runs out)
    ([_computing(playout=NOW + 0.2)], 1, [(0, 1)]),
    # both slots free: it computes wide at once
    ([], 2, [(0, 2)]),
])
def test_first_audio_that_could_compute_wide_waits_for_a_continuation_to_give_way(
        running, free, started):
    tts = Job("tts", True, Turn(NOW - 0.5), 0, max_slots=2)
    chosen = dispatch([tts], {"tts": 1}, free, NOW, reserve=1, running=running)
    assert [(job.seq, count) for job, count in chosen] == started
    if not started:
        assert should_yield(running[0], [tts], {"tts": 1}, NOW)


@pytest.mark.parametrize("waiting, idle, expected", [
    # another caller's first audio waits and has a thread: give it the slot
    ([_job(stage="tts")], {"tts": 1}, True),
    # it waits for the LLM thread this job holds anyway: yielding would not help
    ([_job(stage="llm")], {"llm": 0}, False),
    # a speculation never pre-empts a continuation whose audio runs out soon
    ([_job(stage="stt", confirmed=False)], {"stt": 1}, False),
    # nothing more urgent
    ([_job(stage="tts", first_audio=False, playout=NOW + 9)], {"tts": 1}, False),
    ([], {}, False),
])
def test_a_continuation_yields_only_to_work_that_ranks_higher_and_can_run(waiting, idle,
                                                                          expected):
    running = _job(first_audio=False, playout=NOW + 4.0)
    if not expected and waiting and waiting[0].turn and not waiting[0].turn.confirmed:
        running = _job(first_audio=False, playout=NOW + 0.1)
    assert should_yield(running, waiting, idle, NOW) is expected


# -- the scheduler's threads: real threads, synchronised by events, never by sleeps --------

import threading  # noqa: E402

import gevent  # noqa: E402

from tomctl.metrics import Metrics  # noqa: E402
from tomctl.speech.offload import StopFlag  # noqa: E402
from tomctl.speech.scheduler import DROPPED, Scheduler  # noqa: E402


def _scheduler(slots, **stages):
    scheduler = Scheduler(Budget(slots=slots, threads_per_job=1), Metrics())
    for stage, workers in stages.items():
        scheduler.add_stage(stage, workers)
    scheduler.start()
    return scheduler


def test_jobs_never_compute_in_more_slots_than_the_budget_has():
    scheduler = _scheduler(2, stt=1, llm=2, tts=2)
    lock, running, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    def work(_running, hold):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if hold:
            release.wait(10)
        with lock:
            running[0] -= 1

    try:
        tickets = [scheduler.submit(stage, work, True, first_audio=True, turn=Turn(NOW))
                   for stage in ("stt", "llm", "llm", "tts", "tts")]
        gevent.wait([t.started for t in tickets], count=2, timeout=10)
        assert scheduler.stats() == {"waiting": 3, "running": 2}
        release.set()
        for ticket in tickets:
            ticket.get(run_timeout_s=10)
        assert peak[0] == 2
    finally:
        release.set()
        scheduler.close()


def test_a_free_slot_goes_to_the_most_urgent_waiting_job():
    scheduler = _scheduler(1, stt=1, llm=1, tts=1)
    order, blocker_release = [], threading.Event()
    try:
        blocker = scheduler.submit("tts", lambda r: blocker_release.wait(10), first_audio=True,
                                   turn=Turn(NOW))
        blocker.started.wait(timeout=10)
        jobs = {
            "background": scheduler.submit("llm", lambda r: order.append("background"),
                                           first_audio=False, turn=None),
            "continuation": scheduler.submit("tts", lambda r: order.append("continuation"),
                                             first_audio=False,
                                             turn=Turn(NOW, True, time.monotonic() + 30)),
            "speculative": scheduler.submit("stt", lambda r: order.append("speculative"),
                                            first_audio=True, turn=Turn(1.0, confirmed=False)),
            "first_audio": scheduler.submit("stt", lambda r: order.append("first_audio"),
                                            first_audio=True, turn=Turn(time.monotonic())),
        }
        blocker_release.set()
        for ticket in jobs.values():
            ticket.get(run_timeout_s=10)
        assert order == ["first_audio", "speculative", "continuation", "background"]
    finally:
        blocker_release.set()
        scheduler.close()


def test_a_continuation_gives_its_slot_to_another_callers_first_audio_at_a_checkpoint():
    scheduler = _scheduler(1, llm=1, tts=1)
    order, other_waiting = [], threading.Event()

    def continuation(running):
        running.first_audio_done()
        order.append("continuation starts")
        other_waiting.wait(10)
        running.checkpoint()          # another caller waits for first audio: it goes first
        order.append("continuation resumes")

    try:
        long_answer = scheduler.submit("llm", continuation, first_audio=True,
                                       turn=Turn(NOW, True, time.monotonic() + 30))
        long_answer.started.wait(timeout=10)
        other = scheduler.submit("tts", lambda r: order.append("other caller's first audio"),
                                 first_audio=True, turn=Turn(time.monotonic()))
        other_waiting.set()
        other.get(run_timeout_s=10)
        long_answer.get(run_timeout_s=10)
        assert order == ["continuation starts", "other caller's first audio",
                         "continuation resumes"]
    finally:
        other_waiting.set()
        scheduler.close()


def test_the_first_sentence_computes_in_both_slots_while_the_rest_of_the_answer_waits():
    scheduler = _scheduler(2, llm=1, tts=1)
    order, stop, generating = [], threading.Event(), threading.Event()

    def answer(running):
        running.first_audio_done()
        order.append("next sentence")
        generating.set()
        while not stop.is_set():      # generating, a checkpoint between tokens
            running.checkpoint()
        order.append("answer done")

    def first_sentence(running):
        order.append(f"first sentence in {running.threads} threads")
        stop.set()

    try:
        rest = scheduler.submit("llm", answer, first_audio=True,
                                turn=Turn(NOW, True, time.monotonic() + 30), checkpoints=True)
        assert gevent.get_hub().threadpool.apply(generating.wait, (10,))
        audio = scheduler.submit("tts", first_sentence, first_audio=True,
                                 turn=Turn(time.monotonic()), max_slots=2)
        audio.get(run_timeout_s=10)
        rest.get(run_timeout_s=10)
        assert order == ["next sentence", "first sentence in 2 threads", "answer done"]
    finally:
        stop.set()
        scheduler.close()


def test_time_in_the_queue_is_not_held_against_a_jobs_deadline():
    scheduler = _scheduler(1, stt=1)
    release = threading.Event()
    try:
        busy = scheduler.submit("stt", lambda r: release.wait(10), first_audio=True,
                                turn=Turn(NOW))
        queued = scheduler.submit("stt", lambda r: "heard", first_audio=True, turn=Turn(NOW))
        busy.started.wait(timeout=10)
        gevent.spawn_later(1.0, release.set)
        # Queued for 1 s, computing for a moment: a 0.5 s run deadline is met.
        assert queued.get(run_timeout_s=0.5, queue_timeout_s=10) == "heard"
    finally:
        release.set()
        scheduler.close()


def test_a_queued_job_whose_answer_was_given_up_is_dropped_at_once():
    # A withdrawn speculation's Whisper job used to wait for a slot like any other, and its
    # conversation waited with it: on a busy machine the next turn went seconds without a
    # holding phrase.
    scheduler = _scheduler(1, stt=1, llm=1)
    release, ran = threading.Event(), []
    try:
        busy = scheduler.submit("llm", lambda r: release.wait(10), first_audio=True,
                                turn=Turn(NOW))
        busy.started.wait(timeout=10)
        stop = StopFlag()
        queued = scheduler.submit("stt", lambda r: ran.append("computed"), first_audio=True,
                                  turn=Turn(NOW), stop=stop)
        kept = scheduler.submit("stt", lambda r: "heard", first_audio=True, turn=Turn(NOW))
        stop.set()
        scheduler.drop_stopped()
        assert queued.get(run_timeout_s=1, queue_timeout_s=1) is DROPPED
        assert not release.is_set() and scheduler.stats()["waiting"] == 1
        release.set()
        assert kept.get(run_timeout_s=10) == "heard"
        assert ran == []
    finally:
        release.set()
        scheduler.close()
