"""``tomctl variants`` and ``tomctl learn``: the running service's variants, the operator's
say over them, and the nightly replay of the logged calls."""

from __future__ import annotations

import argparse
import json

from tomctl.cli.status import NOT_RUNNING, fetch
from tomctl.learning.variants import _ID


def register(commands: argparse._SubParsersAction) -> None:
    variants = commands.add_parser("variants", help="the variants TOM tries: calls, reward, "
                                                    "P(best), share, state")
    variants.add_argument("--json", action="store_true", help="print the raw JSON")
    variants.add_argument("action", nargs="?", choices=("pause", "resume", "pin", "unpin"),
                          help="pause or resume a variant, pin one for every call, or unpin")
    variants.add_argument("variant", nargs="?", help="the variant's id")
    variants.set_defaults(run=run_variants)
    learn = commands.add_parser("learn", help="replay the logged calls: rescore, rebuild the "
                                              "posteriors, estimate each variant (IPS)")
    learn.add_argument("--json", action="store_true", help="print the raw JSON")
    learn.set_defaults(run=run_learn)


def run_variants(args: argparse.Namespace) -> int:
    if args.action in ("pause", "resume", "pin"):
        if not args.variant or not _ID.match(args.variant):
            print(f"tomctl: error: {args.action} needs a variant id")
            return 2
        result = fetch(f"/variants/{args.variant}/{args.action}", post=True)
    elif args.action == "unpin":
        result = fetch("/variants/unpin", post=True)
    else:
        result = fetch("/variants")
    if result is None:
        return NOT_RUNNING
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(table(result["variants"]))
    return 0


def table(rows: list[dict]) -> str:
    header = ("variant", "calls", "mean reward (95 %)", "P(best)", "share", "state")
    lines = [header]
    for row in rows:
        low, high = row["interval"]
        state = row["state"] + (", pinned" if row["pinned"] else "")
        lines.append((row["variant"], str(row["calls"]),
                      f"{row['mean_reward']:.3f} ({low:.3f}-{high:.3f})",
                      f"{row['p_best']:.3f}", f"{row['share']:.1%}", state))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in lines)


def run_learn(args: argparse.Namespace) -> int:
    result = fetch("/learn", timeout_s=120, post=True)
    if result is None:
        return NOT_RUNNING
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['calls']} scored calls replayed, {result['rescored']} scored again with "
          "the current weights")
    print(table(result["variants"]))
    print("\nestimated reward had every call gone to it (inverse propensity scoring):")
    for name, found in result["estimates"].items():
        low, high = found["ips_interval"]
        s_low, s_high = found["snips_interval"]
        print(f"  {name}: IPS {found['ips']:.3f} ({low:.3f}-{high:.3f}), self-normalised "
              f"{found['snips']:.3f} ({s_low:.3f}-{s_high:.3f}), {found['calls']} calls")
    return 0
