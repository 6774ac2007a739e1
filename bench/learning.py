"""Learning from callers, simulated: callers whose calls go better or worse by variant, through
the real reward function, bandit and deploy guard.

    python bench/learning.py --json [--calls 1000] [--seed 7]

Ground truth: four variants, each a distribution of what happens in its calls (the caller
rates it, 1 to 5 with noise, in 40 % of calls; hangs up on TOM, asks for a person, hits
fallback turns, interrupts, is transferred, more or less often). ``brief`` is the best,
``harmful`` deliberately bad. Each variant's true expected reward is that distribution's
mean reward under the default weights, by Monte Carlo. Prints:

  best_share_last_200     share of the last 200 calls that went to the best variant (≥ 0.8)
  cumulative_regret       sum over calls of (best true mean - chosen variant's true mean)
  harmful_blacklisted_at  the call after which the guard blacklisted ``harmful`` (≤ 150)
  harmful_share           share of all calls ``harmful`` got (≤ 0.1)
  ips                     per variant: the IPS and self-normalised estimates from the logged
                          propensities, their 95 % intervals, and whether the true mean lies
                          inside
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tomctl.learning import bandit, evaluation  # noqa: E402
from tomctl.learning.reward import Signals, Weights, reward  # noqa: E402

# How each variant's calls tend to go: (quality in [0, 1] that ratings and behaviour follow).
TRUTH = {"base": 0.62, "brief": 0.78, "slow": 0.55, "harmful": 0.2}
BEST = "brief"
RATED_SHARE = 0.4
TARGETS = {"best_share_last_200": 0.8, "harmful_blacklisted_at": 150, "harmful_share": 0.1}


def call_signals(quality: float, rng: np.random.Generator) -> Signals:
    bad = 1.0 - quality
    rating = None
    if rng.random() < RATED_SHARE:
        rating = int(np.clip(round(1 + 4 * quality + rng.normal(0, 0.8)), 1, 5))
    answers = int(rng.integers(1, 6))
    return Signals(rating=rating, hung_up_on_tom=bool(rng.random() < 0.3 * bad),
                   asked_for_person=bool(rng.random() < 0.3 * bad),
                   fallback_turns=int(rng.poisson(0.6 * bad)),
                   barge_ins=int(rng.binomial(answers, 0.3 * bad)), answers=answers,
                   reprompts=int(rng.poisson(0.3 * bad)),
                   duration_s=float(rng.uniform(10, 40) + 60 * quality),
                   transferred=bool(rng.random() < 0.2 * bad))


def true_means(weights: Weights, rng: np.random.Generator, samples: int = 20000) -> dict:
    return {name: float(np.mean([reward(call_signals(quality, rng), weights)
                                 for _ in range(samples)])) for name, quality in TRUTH.items()}


def run(calls: int, seed: int) -> dict:
    weights, guard = Weights(), bandit.Guard()
    means = true_means(weights, np.random.default_rng(seed + 1))
    rng = np.random.default_rng(seed)
    arms = [bandit.Arm(name) for name in TRUTH]
    chosen, log, blacklisted_at = [], [], {}
    for index in range(calls):
        chances = bandit.shares(arms, guard, rng)
        variant, _ = bandit.choose(chances, rng)
        score = reward(call_signals(TRUTH[variant], rng), weights)
        arm = next(arm for arm in arms if arm.id == variant)
        arm.update(score)
        chosen.append(variant)
        log.append(evaluation.Logged(variant, chances, score))
        for decision in bandit.judge(arms, guard, rng):
            next(a for a in arms if a.id == decision.variant).state = decision.action
            blacklisted_at[decision.variant] = {"after_call": index + 1,
                                                "reason": decision.reason}
    best_mean = max(means.values())
    ips = {}
    for name in TRUTH:
        found = evaluation.estimate(log, name)
        ips[name] = {"true_mean": round(means[name], 3), "ips": round(found.ips, 3),
                     "ips_interval": [round(v, 3) for v in found.ips_interval],
                     "snips": round(found.snips, 3),
                     "snips_interval": [round(v, 3) for v in found.snips_interval],
                     "calls": found.calls,
                     "true_mean_inside": found.ips_interval[0] <= means[name]
                     <= found.ips_interval[1]}
    last = chosen[-200:]
    report = {
        "calls": calls,
        "variants": {arm.id: {"calls": arm.calls, "posterior_mean": round(arm.mean, 3),
                              "state": arm.state} for arm in arms},
        "best": BEST,
        "best_share_last_200": round(last.count(BEST) / len(last), 3),
        "cumulative_regret": round(sum(best_mean - means[v] for v in chosen), 2),
        "harmful_blacklisted_at": blacklisted_at.get("harmful", {}).get("after_call"),
        "harmful_share": round(chosen.count("harmful") / calls, 3),
        "blacklisted": blacklisted_at,
        "ips": ips,
        "targets": TARGETS,
        "seed": seed,
    }
    report["meets_targets"] = bool(
        report["best_share_last_200"] >= TARGETS["best_share_last_200"]
        and report["harmful_blacklisted_at"] is not None
        and report["harmful_blacklisted_at"] <= TARGETS["harmful_blacklisted_at"]
        and report["harmful_share"] <= TARGETS["harmful_share"])
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.calls, args.seed)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0 if report["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
