"""Figures the benches share: percentiles, where speech is audible, a process's CPU and RSS."""

from __future__ import annotations

import os

import numpy as np

# -40 dBFS: what counts as audible, for the caller's first and last audible sample.
AUDIBLE = 0.01


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": round(float(np.percentile(values, 50)), 1),
            "p95": round(float(np.percentile(values, 95)), 1), "n": len(values)}


def audible_span(audio: np.ndarray, rate: int) -> tuple[float, float]:
    """Seconds from the start of ``audio`` to its first and to its last audible sample."""
    loud = np.flatnonzero(np.abs(audio) > AUDIBLE)
    if not len(loud):
        return 0.0, 0.0
    return loud[0] / rate, (loud[-1] + 1) / rate


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of process ``pid``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, peak: bool = False) -> float:
    key = "VmHWM:" if peak else "VmRSS:"
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class StealMeter:
    """The share of CPU time the hypervisor gave to other guests while a bench ran: on a
    virtual machine, figures taken while it is high are not comparable to others."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        return fields[7] if len(fields) > 7 else 0, sum(fields)

    def percent(self) -> float:
        steal, total = self._read()
        return round((steal - self._start[0]) / max(1, total - self._start[1]) * 100, 1)
