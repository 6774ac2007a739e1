"""A synthetic call: FreeSWITCH calls TOM's extension and plays a known question.

Through the inbound ESL connection TOM originates a loopback call into its own dialplan
extension; the loopback's caller leg plays a question synthesised once into the spool. TOM
answers that call like any other, and the synthetic call passes when TOM answered the
question within the time limit, reporting the end-to-end latency TOM measured. The call is
recognised by its loopback peer uuid, which TOM chooses (origination_uuid).

FreeSWITCH hangs an originated channel up as soon as its application returns, so the
question WAV ends in silence longer than the time TOM has to answer: the caller stays on
the line until TOM answered, and then this side hangs up.
"""

from __future__ import annotations

import time
from typing import Any

import gevent

from tomctl.errors import TelephonyError
from tomctl.telephony import wire

QUESTION = "What time do you open on Saturday?"
LEAD_SILENCE_S = 6.0          # the greeting plays first; then the caller asks
ANSWER_TIMEOUT_S = 30.0
POLL_S = 0.1


def run(service: Any, extension: str, context: str) -> dict:
    """Place the call, wait for TOM's answer, hang up; a dict saying what happened."""
    peer = wire.new_uuid()
    wav = service.spool.question_wav(QUESTION, LEAD_SILENCE_S, ANSWER_TIMEOUT_S + 5)
    started = time.monotonic()
    try:
        service.link.api("originate",
                         f"{{origination_uuid={peer}}}loopback/{wire.check_token(extension)}/"
                         f"{wire.check_token(context)}", f"&playback({wav})")
    except TelephonyError as exc:
        return {"passed": False, "answered": False, "error": f"originate failed: {exc}"}
    record = None
    deadline = started + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        record = service.registry.find_by_peer(peer)
        if record is not None and (record.last_e2e_ms or record.ended_at):
            break
        gevent.sleep(POLL_S)
    try:
        service.link.api("uuid_kill", peer)
    except TelephonyError:
        pass                      # already gone
    answered = record is not None and record.last_e2e_ms > 0
    return {"passed": answered, "answered": record is not None,
            "call": record.id if record else None,
            "e2e_ms": round(record.last_e2e_ms, 1) if answered else None,
            "seconds": round(time.monotonic() - started, 1)}
