"""Run one fuzz target under atheris (libFuzzer), coverage-guided on TOM's own code.

    python tests/fuzz/run.py TARGET [libFuzzer options, e.g. -runs=100000 -timeout=5]
    python tests/fuzz/run.py --list

Exit status 0 when the runs end without a finding; a finding is written as a crash-,
timeout- or oom- file (-artifact_prefix) that reproduces it when passed as the input.
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

# h11, wsproto and pyjwt too: their coverage is what leads the fuzzer to requests, frames
# and tokens that get far enough into TOM's own code.
with atheris.instrument_imports(include=["tomctl", "h11", "wsproto", "jwt"]):
    from tests.fuzz.targets import TARGETS   # noqa: E402


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name == "--list":
        print("\n".join(TARGETS))
        return
    if name not in TARGETS:
        sys.exit(f"usage: run.py {{{','.join(TARGETS)}}} [libFuzzer options]")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
