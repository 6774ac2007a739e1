"""The fuzz targets (tests/fuzz/) on a short budget: bench/fuzz.py runs them for 10^5 inputs."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = 3000
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

pytestmark = pytest.mark.timeout(600)


def test_every_fuzz_target_survives_a_short_budget(tmp_path):
    process = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "fuzz.py"),
                              "--runs", str(RUNS), "--artifacts", str(tmp_path), "--json"],
                             capture_output=True, text=True, timeout=550)
    result = json.loads(process.stdout)
    assert {"esl_parser", "esl_commands", "gateway_head", "gateway_websocket",
            "jwt_token", "wav_qc", "catalogue_csv"} <= set(result["targets"])
    for name, target in result["targets"].items():
        assert (target["inputs"], target["crashes"], target["hangs"], target["ooms"]) == \
            (RUNS, 0, 0, 0), (name, target.get("log_tail"))
    assert process.returncode == 0 and not os.listdir(tmp_path)


@pytest.mark.parametrize("target", sorted(os.listdir(CORPUS)))
def test_the_inputs_fuzzing_found_stay_fixed(target):
    """tests/fuzz/corpus/TARGET/ holds the inputs that once made TARGET fail, and seeds
    that start the fuzzer off inside TOM's code; replayed, each passes."""
    inputs = sorted(os.path.join(CORPUS, target, name)
                    for name in os.listdir(os.path.join(CORPUS, target)))
    replay = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "fuzz", "run.py"),
                             target, *inputs], capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert replay.stderr.count("Executed ") == len(inputs)
