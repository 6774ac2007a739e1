"""Offline evaluation of logged calls (pure): what would each variant have earned had every
call gone to it, estimated from the calls that did, weighted by how likely each choice was.

Inverse propensity scoring: a call that went to variant v with propensity p and earned r
counts r / p towards v, averaged over the logged calls in which v could have been chosen
(a paused or blacklisted variant's calls say nothing about it, so every call logs every
variant's share). The self-normalised form divides by the sum of the weights instead of
the number of calls: a little biased, much less variance when propensities are small.
Both come with a 95 % interval from their variance.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable


@dataclasses.dataclass(frozen=True)
class Logged:
    variant: str
    shares: dict[str, float]     # every variant's chance in this call, the chosen one's too
    reward: float

    @property
    def propensity(self) -> float:
        return self.shares.get(self.variant, 0.0)


@dataclasses.dataclass(frozen=True)
class Estimate:
    variant: str
    calls: int              # logged calls that went to it
    ips: float
    ips_interval: tuple[float, float]
    snips: float
    snips_interval: tuple[float, float]


def estimate(log: Iterable[Logged], variant: str) -> Estimate:
    calls = [entry for entry in log if entry.shares.get(variant, 0.0) > 0]
    n = len(calls)
    if n == 0:
        return Estimate(variant, 0, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0))
    weights = [1.0 / entry.propensity if entry.variant == variant else 0.0 for entry in calls]
    terms = [w * entry.reward for w, entry in zip(weights, calls)]
    ips = sum(terms) / n
    ips_var = sum((t - ips) ** 2 for t in terms) / max(1, n - 1) / n
    total = sum(weights)
    snips = sum(terms) / total if total else 0.0
    mean_weight = total / n
    snips_var = (sum((w * (entry.reward - snips)) ** 2 for w, entry in zip(weights, calls))
                 / n / (mean_weight ** 2) / n) if total else 0.0
    return Estimate(variant, sum(1 for w in weights if w), ips, _interval(ips, ips_var),
                    snips, _interval(snips, snips_var))


def _interval(value: float, variance: float) -> tuple[float, float]:
    spread = 1.96 * math.sqrt(max(0.0, variance))
    return value - spread, value + spread
