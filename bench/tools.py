"""The tool hub's cost: catalogue lookups on a large catalogue (the e2e cost of a lookup
turn against a plain turn is still to come, with the hub in the conversation).

    python bench/tools.py [--rows 100000] [--lookups 2000] --json

Builds a catalogue of ``--rows`` parts (the demo catalogue's rows, repeated over model
variants with distinct part numbers), imports it through `tomctl catalogue import`'s code,
then times lookups like those a caller's words become: a part for a make, model and year,
in English or German, and a part without a vehicle. Prints import seconds and lookup
p50/p95/max in ms; the target is p95 ≤ 20 ms at 10⁵ rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tomctl.tools.catalogue import COLUMNS, Catalogue, import_csv  # noqa: E402
from tomctl.tools.demo_catalogue import PARTS, VEHICLES, rows  # noqa: E402

TARGET_P95_MS = 20.0


def write_catalogue(path: str, count: int) -> None:
    base = list(rows())
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for n in range(count):
            row = dict(base[n % len(base)])
            variant = n // len(base)
            row["part_number"] = f"DEMO-{variant}-{n}"
            if variant:
                row["model"] = f"{row['model']} Edition{variant}"
            writer.writerow(row)


def queries(count: int) -> list[dict]:
    rng = random.Random(7)
    made = []
    for _ in range(count):
        make = rng.choice(list(VEHICLES))
        model, (first, last, *_) = rng.choice(list(VEHICLES[make].items()))
        english, german, _, _ = rng.choice(PARTS)
        words = (german if rng.random() < 0.3 else english).split()[:2]
        if rng.random() < 0.2:
            made.append({"words": words})
        else:
            made.append({"words": words, "make": make, "model": model,
                         "year": rng.randint(first, last)})
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tom-catalogue-")
    csv_path, db_path = os.path.join(directory, "parts.csv"), os.path.join(directory, "c.db")
    write_catalogue(csv_path, args.rows)
    started = time.perf_counter()
    report = import_csv(csv_path, db_path)
    import_s = time.perf_counter() - started
    catalogue = Catalogue(db_path)
    times, found = [], 0
    for query in queries(args.lookups):
        started = time.perf_counter()
        found += bool(catalogue.find(**query))
        times.append((time.perf_counter() - started) * 1000)
    catalogue.close()
    result = {"rows": report.imported, "import_s": round(import_s, 2),
              "lookups": len(times), "found": found,
              "lookup_ms": {"p50": round(float(np.percentile(times, 50)), 2),
                            "p95": round(float(np.percentile(times, 95)), 2),
                            "max": round(max(times), 2)},
              "target_p95_ms": TARGET_P95_MS}
    result["meets_target"] = result["lookup_ms"]["p95"] <= TARGET_P95_MS
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
